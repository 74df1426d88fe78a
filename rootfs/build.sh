#!/usr/bin/env bash
# rootfs/build.sh [DIR] — build Hearth's minimal Debian bookworm base root.
#
# Owns: a debootstrap'ed (minbase) bookworm tree at DIR (default
# /var/cache/hearth/rootfs-bookworm) holding python3, nodejs, ca-certificates,
# tzdata and the C/C++ runtime libraries, trimmed of docs/man/locales/apt caches,
# with the empty mount points Hearth's `--rootfs DIR` needs and the Lambda
# sandbox user (sbx_user1051, uid/gid 993).
# Does not: install any Lambda runtime interface client, language handler code
# or nodejs20.x (bookworm ships nodejs 18); the runtimes/ tree layers those on.
# Limits: needs root, Debian's debootstrap, and the Debian mirror already
# configured for apt on this host (it reuses that URI; it never picks another).
# Rebuilding while sandboxes are running on DIR is not supported: the old tree
# is deleted after the new one is renamed into place.
#
# Idempotent: DIR/.hearth-rootfs-stamp records the script hash, suite,
# architecture and package list; when it matches, the script exits at once.
# Set HEARTH_ROOTFS_FORCE=1 to rebuild anyway.
set -euo pipefail

readonly SUITE=bookworm
readonly DEFAULT_DIR=/var/cache/hearth/rootfs-bookworm
# What the managed runtimes need on top of minbase. Recommends are not
# installed (debootstrap never pulls them), which keeps the tree small.
readonly PACKAGES=(
    python3
    nodejs
    ca-certificates
    tzdata
    libstdc++6
    libgcc-s1
)
readonly SBX_USER=sbx_user1051
readonly SBX_ID=993
readonly STAMP_NAME=.hearth-rootfs-stamp

die() {
    echo "rootfs/build.sh: error: $*" >&2
    exit 1
}
log() {
    echo "rootfs/build.sh: $*" >&2
}

usage() {
    cat >&2 <<EOF
usage: rootfs/build.sh [DIR]
  Builds a minimal Debian ${SUITE} root for 'hearth run --rootfs DIR' into DIR
  (default ${DEFAULT_DIR}). Must run as root. Env: HEARTH_ROOTFS_FORCE=1 to
  rebuild even if DIR's stamp is current.
EOF
}

case "${1:-}" in
-h | --help)
    usage
    exit 0
    ;;
esac
[[ $# -le 1 ]] || {
    usage
    exit 2
}
[[ ${EUID} -eq 0 ]] || die "must run as root (debootstrap, chroot and mknod need it)"

DIR=${1:-$DEFAULT_DIR}
DIR=${DIR%/}
[[ -n ${DIR} && ${DIR} != / ]] || die "refusing to build into '/'"
case "${DIR}" in
/*) ;;
*) DIR="$(pwd)/${DIR}" ;;
esac
readonly DIR
readonly TMP="${DIR}.tmp"
readonly OLD="${DIR}.old"

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C
umask 022

ARCH=$(dpkg --print-architecture)
readonly ARCH
SCRIPT_HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
readonly SCRIPT_HASH
STAMP_WANT=$(printf 'script=%s\nsuite=%s\narch=%s\npackages=%s\n' \
    "${SCRIPT_HASH}" "${SUITE}" "${ARCH}" "${PACKAGES[*]}")
readonly STAMP_WANT

# One build at a time per DIR: a second caller waits, then finds the stamp.
mkdir -p "$(dirname "${DIR}")"
exec 9>"${DIR}.lock"
flock 9

# ---- cached? --------------------------------------------------------------
if [[ -z ${HEARTH_ROOTFS_FORCE:-} && -f "${DIR}/${STAMP_NAME}" ]] &&
    [[ "$(grep -v '^built=' "${DIR}/${STAMP_NAME}")" == "${STAMP_WANT}" ]]; then
    log "${DIR} is up to date ($(grep '^built=' "${DIR}/${STAMP_NAME}" || true)); nothing to do"
    echo "size: $(du -sh "${DIR}" | cut -f1) ${DIR}"
    exit 0
fi

# ---- mirror: reuse the URI apt already uses on this host ----------------------
# Prints the first URI of an active apt source (deb822 *.sources or one-line
# *.list; files with other suffixes, e.g. *.disabled, are ignored by apt too)
# whose suites include $1.
find_uri() {
    local want=$1 f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # deb [opts] URI SUITE COMPONENTS...
        awk -v want="$want" '
            $1 == "deb" {
                i = 2
                if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == want) { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk -v want="$want" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && uri != "" &&
                    (" " suites " ") ~ (" " want " ")) { print uri; found = 1 }
                types = ""; suites = ""; uri = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); if (found) exit; next }
            {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "suites") suites = val
                else if (key == "uris") { split(val, u, /[ \t]+/); uri = u[1] }
                else if (key == "enabled") enabled = tolower(val)
            }
            END { if (!found) flush() }' "$f"
    done
}
MIRROR=$(find_uri "${SUITE}" | head -n1)
SECURITY=$(find_uri "${SUITE}-security" | head -n1)
[[ -n ${MIRROR} ]] ||
    die "no active apt source for suite '${SUITE}' in /etc/apt/sources.list{,.d/}; configure one first"
log "mirror ${MIRROR}${SECURITY:+, security ${SECURITY}}"

# ---- tools ----------------------------------------------------------------
if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get install -y -q debootstrap >/dev/null ||
        die "could not install debootstrap (run 'apt-get update' first?)"
fi
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f ${KEYRING} ]] || die "missing ${KEYRING} (apt-get install debian-archive-keyring)"

# ---- clean-up of a half-built tree -----------------------------------------
# Mounts are made only inside private mount namespaces (unshare -m), so none
# can outlive the script; --one-file-system is a second guard so rm never
# descends into anything mounted under the tree.
cleanup_tmp() {
    if [[ -e ${TMP} ]]; then
        rm -rf --one-file-system -- "${TMP}" ||
            log "warning: could not remove ${TMP}; remove it by hand"
    fi
}
on_exit() {
    local rc=$?
    if [[ ${rc} -ne 0 ]]; then
        log "failed (exit ${rc}); removing ${TMP}"
        cleanup_tmp
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

START=$(date +%s)
cleanup_tmp # a leftover from an interrupted run

# ---- debootstrap -----------------------------------------------------------
INCLUDE=$(
    IFS=,
    echo "${PACKAGES[*]}"
)
log "debootstrap --variant=minbase ${SUITE} into ${TMP} (+${INCLUDE})"
DEBOOTSTRAP_LOG=$(mktemp)
if ! unshare -m --propagation private \
    debootstrap --variant=minbase --arch="${ARCH}" --components=main \
    --keyring="${KEYRING}" --include="${INCLUDE}" \
    "${SUITE}" "${TMP}" "${MIRROR}" >"${DEBOOTSTRAP_LOG}" 2>&1; then
    tail -n 30 "${DEBOOTSTRAP_LOG}" >&2
    [[ -f ${TMP}/debootstrap/debootstrap.log ]] && tail -n 30 "${TMP}/debootstrap/debootstrap.log" >&2
    rm -f "${DEBOOTSTRAP_LOG}"
    die "debootstrap failed (output above)"
fi
rm -f "${DEBOOTSTRAP_LOG}"

# ---- apt configuration inside the root -----------------------------------------
# Same hosts as this machine's apt. Later layers (runtimes/) may apt-get install
# in a chroot; these settings keep what they add small as well.
{
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
        "${MIRROR}" "${SUITE}" "${SUITE}" "${KEYRING}"
    if [[ -n ${SECURITY} ]]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
            "${SECURITY}" "${SUITE}" "${KEYRING}"
    fi
} >"${TMP}/etc/apt/sources.list.d/debian.sources"
rm -f "${TMP}/etc/apt/sources.list"
cat >"${TMP}/etc/apt/apt.conf.d/90hearth-small" <<'EOF'
// Hearth base root: keep package installs small.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"${TMP}/etc/dpkg/dpkg.cfg.d/90hearth-nodoc" <<'EOF'
# Hearth base root: no docs, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF

# ---- security and point-release updates --------------------------------------
log "applying ${SUITE}-updates/-security upgrades"
cat >"${TMP}/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
exit 101
EOF
chmod 0755 "${TMP}/usr/sbin/policy-rc.d"
# shellcheck disable=SC2016 # expanded by the inner shell
if ! unshare -m --propagation private sh -euc '
    mount -t proc proc "$1/proc"
    chroot "$1" apt-get update -q
    chroot "$1" apt-get -y -q -o Dpkg::Options::=--force-confold upgrade
    chroot "$1" apt-get clean
' sh "${TMP}" >"${TMP}.upgrade.log" 2>&1; then
    tail -n 30 "${TMP}.upgrade.log" >&2
    rm -f "${TMP}.upgrade.log"
    die "apt-get upgrade inside the new root failed (output above)"
fi
rm -f "${TMP}.upgrade.log" "${TMP}/usr/sbin/policy-rc.d"

# ---- trim ------------------------------------------------------------------
log "trimming docs, man pages, locales and caches"
R=${TMP}
rm -rf "${R}"/var/cache/apt/* "${R}"/var/lib/apt/lists/* \
    "${R}"/var/cache/debconf/*-old "${R}"/var/lib/dpkg/*-old \
    "${R}"/var/log/* "${R}"/debootstrap \
    "${R}"/usr/share/man/* "${R}"/usr/share/info/* \
    "${R}"/usr/share/lintian "${R}"/usr/share/linda \
    "${R}"/usr/share/locale/* "${R}"/usr/share/zoneinfo/right
mkdir -p "${R}"/var/lib/apt/lists/partial "${R}"/var/cache/apt/archives/partial
# Keep each package's copyright file (licence obligations); drop the rest.
find "${R}"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find "${R}"/usr/share/doc -mindepth 1 -type d -empty -delete
# Only the C / C.UTF-8 locale stays (glibc's built-in C plus libc-bin's C.utf8).
find "${R}"/usr/lib/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +

# ---- mount points and /etc -------------------------------------------------
# Hearth mounts over these (often from a read-only bind of this tree, where it
# cannot create them), so they must exist and be empty. /dev loses the nodes
# debootstrap made: Hearth mounts its own minimal /dev there.
for d in proc sys dev tmp var/task var/runtime opt; do
    if [[ -d ${R}/${d} ]]; then
        find "${R}/${d}" -mindepth 1 -delete
    else
        rm -f "${R:?}/${d}"
        mkdir -p "${R}/${d}"
    fi
done
chmod 0555 "${R}"/proc "${R}"/sys
chmod 0755 "${R}"/dev "${R}"/var/task "${R}"/var/runtime "${R}"/opt
chmod 1777 "${R}"/tmp

# The Lambda sandbox user: same name and id as on Lambda. Home is /tmp, the
# only writable place in a sandbox.
grep -q "^${SBX_USER}:" "${R}"/etc/passwd ||
    echo "${SBX_USER}:x:${SBX_ID}:${SBX_ID}::/tmp:/usr/sbin/nologin" >>"${R}"/etc/passwd
grep -q "^${SBX_USER}:" "${R}"/etc/group ||
    echo "${SBX_USER}:x:${SBX_ID}:" >>"${R}"/etc/group
grep -q "^${SBX_USER}:" "${R}"/etc/shadow ||
    echo "${SBX_USER}:*:19000:0:99999:7:::" >>"${R}"/etc/shadow
grep -q "^${SBX_USER}:" "${R}"/etc/gshadow ||
    echo "${SBX_USER}:*::" >>"${R}"/etc/gshadow
grep -q '^root:' "${R}"/etc/passwd || die "no root entry in the new /etc/passwd"

# A plain file, never a symlink into /run (which would dangle in a sandbox).
# No nameserver: sandboxes have no network unless the operator enables it,
# and then Hearth writes its own.
rm -f "${R}"/etc/resolv.conf
echo '# Hearth base root: no network by default' >"${R}"/etc/resolv.conf
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"${R}"/etc/hosts
echo sandbox >"${R}"/etc/hostname
ln -sf /usr/share/zoneinfo/Etc/UTC "${R}"/etc/localtime
echo Etc/UTC >"${R}"/etc/timezone
rm -f "${R}"/etc/machine-id "${R}"/var/lib/dbus/machine-id

# ---- smoke test ------------------------------------------------------------
log "checking python3 and node inside the new root"
chroot "${R}" /usr/bin/python3 -c 'import ssl, zoneinfo, json; print("python3 ok")' >/dev/null ||
    die "python3 does not start inside ${R}"
chroot "${R}" /usr/bin/node -e 'require("crypto"); console.log("node ok")' >/dev/null ||
    die "node does not start inside ${R}"

# ---- stamp and swap into place ----------------------------------------------------
PY_VERSION=$(chroot "${R}" /usr/bin/python3 -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
NODE_VERSION=$(chroot "${R}" /usr/bin/node --version)
{
    echo "${STAMP_WANT}"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) python=${PY_VERSION} node=${NODE_VERSION} mirror=${MIRROR}"
} >"${R}/${STAMP_NAME}"

if [[ -e ${DIR} ]]; then
    rm -rf --one-file-system -- "${OLD}"
    mv -- "${DIR}" "${OLD}"
fi
mv -- "${TMP}" "${DIR}"
[[ -e ${OLD} ]] && rm -rf --one-file-system -- "${OLD}"

log "built ${DIR} in $(($(date +%s) - START)) s (python ${PY_VERSION}, node ${NODE_VERSION})"
echo "size: $(du -sh "${DIR}" | cut -f1) ${DIR}"
