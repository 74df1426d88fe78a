#!/usr/bin/env bash
# scripts/vm-test.sh — runs one command as root inside a pure cgroup v2 guest (a Debian
# kernel under QEMU), so that Hearth's root/namespace tests exercise the cgroup v2 driver
# on a hybrid or v1 host (CI's machine is hybrid). See README, "Running the cgroup v2 leg
# locally".
#
# usage: scripts/vm-test.sh [OPTIONS] [--] CMD [ARGS...]
#
# The guest sees the host's / read-only at the same paths (virtio-9p, with a RAM overlay
# on top, so writes stay in the guest), the work directory (default: this repository)
# read-write, and a throwaway ext4 disk for /var/lib/hearth, /tmp and /var/tmp. The
# kernel runs with cgroup_no_v1=all; cgroup2 is mounted at /sys/fs/cgroup as systemd
# mounts it, with cpu, io, memory and pids enabled down to system.slice, and CMD runs in
# the non-root cgroup /system.slice/hearth-test.service (a Delegate=yes service, in
# effect). CMD's cwd is the host's current directory; its stdout and stderr stream live to
# this script's stdout and stderr over virtio-serial ports (the kernel's console goes to
# a log file instead); stdin is /dev/null.
#
# Exit status: CMD's own (0-255), or
#    2  bad usage
#   90  the guest crashed: kernel panic or oops, or it stopped without reporting CMD's
#       exit status (its kernel log is printed)
#   91  the guest hung: CMD had not finished after --timeout seconds (kernel log printed)
#   92  the harness failed: a missing tool, the kernel could not be fetched, QEMU did not
#       start
# (a CMD that itself exits 90-92 is told apart by the "vm-test:" line printed with them)
#
# Owns: installing its tools (Debian packages qemu-system-x86, busybox-static, kmod,
# e2fsprogs, when missing), fetching the kernel package that linux-image-amd64 depends on
# with `apt-get download` (never installing it), and building a small initramfs
# (busybox, scripts/vm/init, the few modules needed to mount the root); both are cached
# under /var/cache/hearth/vm/<package>_<version>/, so only the first run pays for them.
# Every process it starts (QEMU, two readers, a timer) is ended by pid when it exits or
# is signalled, and gets SIGKILL from the kernel if this script is SIGKILLed (setpriv
# --pdeathsig); its temporary directory (with the disk image) is removed, or, after a
# SIGKILL, by the next run.
#
# Why a disk for /var/lib/hearth: Hearth's /tmp volumes are ext4 images on loop devices,
# as on a real host they should sit on a block-device filesystem. Measured with the
# 512 MB /tmp fill test: ext4 on this virtio disk 102 s, the overlay's tmpfs 142 s (and
# up to 1.5 GB of guest RAM held by test images), a 9p directory of the host 219 s (loop
# over 9p works, buffered: no O_DIRECT).
#
# Limits: x86_64 hosts with apt; QEMU runs under TCG software emulation (this machine's
# /dev/kvm runs only guest kernels built for it), so the guest is several times slower
# than the host: build on the host, run prebuilt binaries in the guest. The guest has
# no network device (only lo). Runs as root.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT VM_DIR=${ROOT}/scripts/vm

CACHE=${HEARTH_VM_CACHE:-/var/cache/hearth/vm}
TIMEOUT=1800
MEMORY_MB=4096
CPUS=$(nproc)
DISK_GB=32
WORK_DIR=${ROOT}
KERNEL_PKG=${HEARTH_VM_KERNEL:-}
CONSOLE_COPY=""
KERNEL_LOG=failure
APPEND=""
ENVS=()
# The initramfs modules: what stage 1 needs to mount the root, the control and work
# shares and the scratch disk, plus loop (Hearth's /tmp volumes; /dev/loop-control only
# appears once it is loaded). Their dependencies are added from modules.dep. Anything
# else the guest needs, the kernel loads itself through modprobe from the modules tree.
INITRD_MODULES=(virtio_pci virtio_blk virtio_console 9pnet_virtio 9p overlay crc32c_generic ext4 loop)

E_CRASH=90
E_HANG=91
E_HARNESS=92

log() { echo "vm-test: $*" >&2; }
die() {
    log "error: $*"
    exit "${E_HARNESS}"
}
usage() {
    cat >&2 <<'EOF'
usage: scripts/vm-test.sh [OPTIONS] [--] CMD [ARGS...]
Runs CMD as root in a pure cgroup v2 guest (QEMU, Debian kernel), inside the cgroup
/system.slice/hearth-test.service, with cwd = the current directory, and exits with its
status (90: guest crashed, 91: timed out, 92: harness failure; kernel log printed).

options:
  --timeout SECONDS   kill the guest after this long (default 1800)
  --memory MB         guest memory (default 4096)
  --cpus N            guest CPUs (default: the host's, nproc)
  --work DIR          directory shared read-write at the same path (default: the repo)
  --env NAME[=VALUE]  pass NAME to CMD (repeatable; without a value, the host's). Always
                      passed: PATH, HOME=/root, LANG, and every HEARTH_*, RUST_*, CARGO_*
                      and CI variable set here
  --disk-size GB      sparse scratch disk for /var/lib/hearth and /tmp (default 32)
  --kernel PACKAGE    Debian kernel package to boot (default: what linux-image-amd64
                      depends on; env HEARTH_VM_KERNEL)
  --kernel-log WHEN   print the guest's kernel log: failure (default: on a crash, a hang,
                      or a non-zero exit of CMD, then only what it logged while CMD ran),
                      always, never (a crash or hang prints it regardless)
  --console FILE      also save the guest's whole console log to FILE
  --append ARGS       extra kernel command line arguments
env: HEARTH_VM_CACHE  cache directory (default /var/cache/hearth/vm)
EOF
}

# ---- arguments ---------------------------------------------------------------------
need_value() { [[ $# -ge 2 ]] || { usage; log "error: $1 needs a value"; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case "$1" in
    --timeout) need_value "$@"; TIMEOUT=$2; shift 2 ;;
    --memory) need_value "$@"; MEMORY_MB=$2; shift 2 ;;
    --cpus) need_value "$@"; CPUS=$2; shift 2 ;;
    --work) need_value "$@"; WORK_DIR=$2; shift 2 ;;
    --env) need_value "$@"; ENVS+=("$2"); shift 2 ;;
    --disk-size) need_value "$@"; DISK_GB=$2; shift 2 ;;
    --kernel) need_value "$@"; KERNEL_PKG=$2; shift 2 ;;
    --kernel-log) need_value "$@"; KERNEL_LOG=$2; shift 2 ;;
    --console) need_value "$@"; CONSOLE_COPY=$2; shift 2 ;;
    --append) need_value "$@"; APPEND=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage; log "error: unknown option $1"; exit 2 ;;
    *) break ;;
    esac
done
[[ $# -gt 0 ]] || { usage; log "error: no command given"; exit 2; }
for n in "${TIMEOUT}" "${MEMORY_MB}" "${CPUS}" "${DISK_GB}"; do
    [[ ${n} =~ ^[1-9][0-9]*$ ]] || { usage; log "error: '${n}' is not a positive integer"; exit 2; }
done
case "${KERNEL_LOG}" in failure | always | never) ;; *) usage; log "error: --kernel-log ${KERNEL_LOG}?"; exit 2 ;; esac
[[ -d ${WORK_DIR} ]] || { log "error: --work ${WORK_DIR} is not a directory"; exit 2; }
WORK_DIR=$(cd "${WORK_DIR}" && pwd -P)
[[ ${EUID} -eq 0 ]] || die "must run as root (QEMU's 9p export of / and apt-get)"
[[ $(uname -m) == x86_64 ]] || die "x86_64 hosts only (this is $(uname -m))"
((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) ||
    die "needs bash >= 5.1 (wait -n -p)"

# ---- tools ---------------------------------------------------------------------------
apt_updated=0
apt_update() {
    if [[ ${apt_updated} == 0 ]]; then
        log "apt-get update"
        apt-get update -qq >/dev/null || log "warning: apt-get update failed"
        apt_updated=1
    fi
}
busybox_is_static() {
    [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1
}
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
busybox_is_static || missing+=(busybox-static)
command -v depmod >/dev/null || missing+=(kmod)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
command -v flock >/dev/null && command -v setpriv >/dev/null || missing+=(util-linux)
command -v setfattr >/dev/null || missing+=(attr)
if [[ ${#missing[@]} -gt 0 ]]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt_update
    log "installing ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
    busybox_is_static || die "/bin/busybox is not a static binary after installing busybox-static"
fi

# ---- the kernel and the initramfs (cached) ---------------------------------------------
# The package to boot and its version, from apt's lists (updated once if they know none).
apt_field() { # PACKAGE FIELD: FIELD of PACKAGE's candidate version
    apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n "s/^$2: //p" | head -n1
}
resolve_kernel() {
    local pkg=${KERNEL_PKG}
    if [[ -z ${pkg} ]]; then
        pkg=$(apt_field linux-image-amd64 Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n1)
    fi
    [[ -n ${pkg} ]] || return 1
    local version
    version=$(apt_field "${pkg}" Version)
    [[ -n ${version} ]] || return 1
    echo "${pkg} ${version}"
}
mkdir -p "${CACHE}"
if ! read -r KPKG KVERSION < <(resolve_kernel); then
    apt_update
    if ! read -r KPKG KVERSION < <(resolve_kernel); then
        # Offline and apt knows nothing: fall back on the newest kernel already cached.
        newest=""
        for d in "${CACHE}"/linux-image-*/; do
            [[ -f ${d}ok && (-z ${newest} || ${d} -nt ${newest}) ]] && newest=${d}
        done
        [[ -n ${newest} ]] ||
            die "cannot tell which kernel package to boot (apt-cache show ${KERNEL_PKG:-linux-image-amd64} found nothing) and none is cached in ${CACHE}"
        newest=$(basename "${newest%/}")
        KPKG=${newest%%_*}
        KVERSION=${newest#*_}
        log "warning: apt knows no kernel package; using the cached ${KPKG} ${KVERSION}"
    fi
fi
KDIR=${CACHE}/${KPKG}_${KVERSION}

# A new initramfs whenever stage 1, the module list or busybox changes.
INITRD_KEY=$( {
    cat "${VM_DIR}/init"
    echo "${INITRD_MODULES[*]}"
    sha256sum /bin/busybox
} | sha256sum | cut -c1-16)
INITRD=${KDIR}/initrd-${INITRD_KEY}.img

fetch_kernel() { # into ${KDIR}: vmlinuz, config, release, modules/ (with modules.dep)
    local build
    build=$(mktemp -d "${CACHE}/.build.XXXXXX")
    log "fetching ${KPKG} ${KVERSION} (apt-get download; not installed)"
    (cd "${build}" && apt-get download -q "${KPKG}=${KVERSION}" 2>&1 | grep -v 'unsandboxed as root' >&2) ||
        true
    local deb=""
    for deb in "${build}"/*.deb; do break; done
    [[ -f ${deb} ]] || { rm -rf "${build}"; die "apt-get download ${KPKG}=${KVERSION} failed"; }
    dpkg-deb -x "${deb}" "${build}/x" || { rm -rf "${build}"; die "dpkg-deb -x ${deb} failed"; }
    local release="" m
    for m in "${build}"/x/lib/modules/*/; do
        m=${m%/}
        release=${m##*/}
        break
    done
    [[ -n ${release} && -f ${build}/x/boot/vmlinuz-${release} ]] ||
        { rm -rf "${build}"; die "${deb} holds no vmlinuz and modules"; }
    # The package leaves modules.dep to its postinst: make it here.
    depmod -b "${build}/x" "${release}" || { rm -rf "${build}"; die "depmod ${release} failed"; }
    mkdir "${build}/k"
    mv "${build}/x/boot/vmlinuz-${release}" "${build}/k/vmlinuz"
    mv "${build}/x/boot/config-${release}" "${build}/k/config" 2>/dev/null || true
    mv "${build}/x/lib/modules/${release}" "${build}/k/modules"
    echo "${release}" >"${build}/k/release"
    rm -rf "${KDIR}"
    mv "${build}/k" "${KDIR}"
    touch "${KDIR}/ok"
    rm -rf "${build}"
}

build_initrd() { # ${INITRD}: busybox, stage 1, INITRD_MODULES and their dependencies
    local mods=${KDIR}/modules
    local -A path_of=() deps_of=() builtin=() seen=()
    local order=() line rel deps name
    while IFS= read -r line; do
        rel=${line%%:*}
        deps=${line#*:}
        name=${rel##*/}
        name=${name%%.ko*}
        name=${name//-/_}
        path_of[${name}]=${rel}
        deps_of[${name}]=${deps}
    done <"${mods}/modules.dep"
    while IFS= read -r rel; do
        name=${rel##*/}
        name=${name%%.ko*}
        builtin[${name//-/_}]=1
    done <"${mods}/modules.builtin"
    add_module() {
        local n=${1//-/_} d
        [[ -z ${seen[${n}]:-} ]] || return 0
        seen[${n}]=1
        if [[ -z ${path_of[${n}]:-} ]]; then
            [[ -n ${builtin[${n}]:-} ]] || die "module ${n} is neither built into ${KPKG} nor a module of it"
            return 0
        fi
        for d in ${deps_of[${n}]}; do
            d=${d##*/}
            add_module "${d%%.ko*}"
        done
        order+=("${n}")
    }
    for name in "${INITRD_MODULES[@]}"; do
        add_module "${name}"
    done

    local build
    build=$(mktemp -d "${CACHE}/.initrd.XXXXXX")
    mkdir -p "${build}"/{bin,dev,proc,sys,lower,rw,newroot,vmctl,lib/modules}
    cp /bin/busybox "${build}/bin/busybox"
    cp "${VM_DIR}/init" "${build}/init"
    chmod 0755 "${build}/init"
    # The kernel opens /dev/console for init before anything is mounted.
    mknod -m 0600 "${build}/dev/console" c 5 1
    for name in "${order[@]}"; do
        rel=${path_of[${name}]}
        case "${rel}" in
        *.ko) cp "${mods}/${rel}" "${build}/lib/modules/${name}.ko" ;;
        *.ko.xz) xz -dc "${mods}/${rel}" >"${build}/lib/modules/${name}.ko" ;;
        *.ko.zst) zstd -qdc "${mods}/${rel}" >"${build}/lib/modules/${name}.ko" ;;
        *.ko.gz) gzip -dc "${mods}/${rel}" >"${build}/lib/modules/${name}.ko" ;;
        *) die "unknown module format ${rel}" ;;
        esac || die "cannot unpack ${rel}"
        echo "${name}" >>"${build}/modules.list"
    done
    (cd "${build}" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >"${build}.img" ||
        die "cpio of the initramfs failed"
    rm -rf "${build}"
    rm -f "${KDIR}"/initrd-*.img
    mv "${build}.img" "${INITRD}"
    log "built initramfs $(basename "${INITRD}") ($(du -h "${INITRD}" | cut -f1), modules: ${order[*]})"
}

prune_old_kernels() { # other cached kernels, unless a running guest holds them
    local d
    for d in "${CACHE}"/linux-image-*/; do
        d=${d%/}
        [[ ${d} != "${KDIR}" ]] || continue
        [[ -e ${d}/.lock ]] || { rm -rf "${d}"; continue; }
        flock -n -x "${d}/.lock" rm -rf "${d}" || true
    done
}

(
    flock -x 9
    if [[ ! -f ${KDIR}/ok ]]; then
        fetch_kernel
        prune_old_kernels
    fi
    [[ -f ${INITRD} ]] || build_initrd
) 9>"${CACHE}/.lock"
[[ -f ${KDIR}/ok && -f ${INITRD} ]] || exit "${E_HARNESS}"
RELEASE=$(cat "${KDIR}/release")
# Held (shared) while this guest runs: its modules tree is read through 9p all along.
exec 8<>"${KDIR}/.lock"
flock -s 8

# ---- the run ---------------------------------------------------------------------------
# Leftovers of a run that was SIGKILLed (its QEMU died with it, see below): removed
# when the pid that made them is gone.
for d in "${TMPDIR:-/tmp}"/vm-test.*/; do
    [[ -f ${d}pid ]] || continue
    kill -0 "$(cat "${d}pid")" 2>/dev/null || rm -rf "${d}"
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vm-test.XXXXXX")
echo $$ >"${TMP}/pid"
# Every child gets SIGKILL if this script dies, even by SIGKILL (no trap runs then).
orphan_guard=(setpriv --pdeathsig KILL --)
QEMU_PID=""
SLEEP_PID=""
CAT_PIDS=()
# shellcheck disable=SC2317 # reached through the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    local p
    for p in ${QEMU_PID} ${SLEEP_PID} "${CAT_PIDS[@]}"; do
        kill -KILL "${p}" 2>/dev/null || true
    done
    for p in ${QEMU_PID} ${SLEEP_PID} "${CAT_PIDS[@]}"; do
        wait "${p}" 2>/dev/null || true
    done
    rm -rf "${TMP}"
    exit "${rc}"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# The command file: cd, a clean environment, exec. Every word single-quoted.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
    echo "cd $(q "${PWD}") || exit 125"
    echo "export PATH=$(q "${PATH}") HOME=/root USER=root LOGNAME=root"
    [[ -n ${LANG:-} ]] && echo "export LANG=$(q "${LANG}")"
    while IFS= read -r name; do
        echo "export ${name}=$(q "${!name}")"
    done < <(compgen -e | grep -E '^(HEARTH_|RUST_|CARGO_|CI$)' || true)
    for e in "${ENVS[@]}"; do
        name=${e%%=*}
        [[ ${name} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env ${e}: bad name"
        if [[ ${e} == *=* ]]; then
            echo "export ${name}=$(q "${e#*=}")"
        elif [[ -n ${!name+set} ]]; then
            echo "export ${name}=$(q "${!name}")"
        fi
    done
    printf 'exec'
    for a in "$@"; do
        printf ' %s' "$(q "${a}")"
    done
    echo
} >"${TMP}/command"
mkdir "${TMP}/ctl"
mv "${TMP}/command" "${TMP}/ctl/command"
cp "${VM_DIR}/stage2" "${TMP}/ctl/stage2"
{
    echo "WORK_DIR=$(q "${WORK_DIR}")"
    echo "MODULES_DIR=$(q "${KDIR}/modules")"
    echo "CGROUP_UNIT=hearth-test.service"
} >"${TMP}/ctl/config"

# The scratch disk: sparse, formatted here (lazy init: a second), gone with ${TMP}.
truncate -s "${DISK_GB}G" "${TMP}/disk.img"
mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1 -L vm-scratch "${TMP}/disk.img" ||
    die "mkfs.ext4 of the scratch disk failed"

mkfifo "${TMP}/out.fifo" "${TMP}/err.fifo"
"${orphan_guard[@]}" cat "${TMP}/out.fifo" &
CAT_PIDS+=($!)
"${orphan_guard[@]}" cat "${TMP}/err.fifo" >&2 &
CAT_PIDS+=($!)
# Opened read-write here (never blocks on a FIFO) after the readers have started, so
# that neither QEMU's open nor the readers' ever hang, and the readers see EOF exactly
# when both QEMU and this script have closed them.
exec 5<>"${TMP}/out.fifo" 6<>"${TMP}/err.fifo"

virtfs_path() { printf '%s' "${1//,/,,}"; } # QEMU's option syntax doubles commas
cmdline=(
    console=ttyS0 # the kernel log, to ${TMP}/console.log
    cgroup_no_v1=all
    panic=-1     # a panic reboots at once, and -no-reboot turns that into QEMU's exit
    oops=panic   # an oops is a crash of the run, not something to limp on from
    mitigations=off # the emulated CPU is not shared; page-table isolation is slow in TCG
    rdinit=/init
)
# shellcheck disable=SC2206 # word splitting is the point
cmdline+=(${APPEND})
# shellcheck disable=SC2054 # commas are QEMU's, inside single arguments
qemu=(
    qemu-system-x86_64
    -machine q35 -accel tcg,thread=multi -cpu max -smp "${CPUS}" -m "${MEMORY_MB}"
    -kernel "${KDIR}/vmlinuz" -initrd "${INITRD}" -append "${cmdline[*]}"
    -nic none -no-reboot -display none -monitor none -nodefaults
    -serial "file:${TMP}/console.log"
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$(virtfs_path "${WORK_DIR}"),mount_tag=work,security_model=none,multidevs=remap"
    -virtfs "local,path=$(virtfs_path "${TMP}/ctl"),mount_tag=vmctl,security_model=none"
    -drive "file=$(virtfs_path "${TMP}/disk.img"),format=raw,if=virtio,cache=unsafe"
    -device virtio-serial-pci
    -chardev "file,id=out,path=$(virtfs_path "${TMP}/out.fifo")"
    -device virtserialport,chardev=out,name=vmtest.out
    -chardev "file,id=err,path=$(virtfs_path "${TMP}/err.fifo")"
    -device virtserialport,chardev=err,name=vmtest.err
)
log "booting ${RELEASE} (${KPKG} ${KVERSION}) under QEMU TCG: ${CPUS} CPUs, ${MEMORY_MB} MB, cgroup v2 only; timeout ${TIMEOUT} s"
start=${SECONDS}
"${orphan_guard[@]}" "${qemu[@]}" </dev/null >"${TMP}/qemu.log" 2>&1 &
QEMU_PID=$!
"${orphan_guard[@]}" sleep "${TIMEOUT}" &
SLEEP_PID=$!
finished=""
qemu_rc=0
while [[ -z ${finished} ]]; do
    # A trapped signal interrupts `wait`; the trap then exits through cleanup.
    wait -n -p finished "${QEMU_PID}" "${SLEEP_PID}" && qemu_rc=0 || qemu_rc=$?
done
timed_out=0
if [[ ${finished} == "${SLEEP_PID}" ]]; then
    timed_out=1
    kill -KILL "${QEMU_PID}" 2>/dev/null || true
    wait "${QEMU_PID}" 2>/dev/null || true
else
    kill -KILL "${SLEEP_PID}" 2>/dev/null || true
    wait "${SLEEP_PID}" 2>/dev/null || true
fi
QEMU_PID=""
SLEEP_PID=""
exec 5>&- 6>&-
for p in "${CAT_PIDS[@]}"; do
    wait "${p}" 2>/dev/null || true
done
CAT_PIDS=()
elapsed=$((SECONDS - start))
[[ -z ${CONSOLE_COPY} ]] || cp "${TMP}/console.log" "${CONSOLE_COPY}" 2>/dev/null ||
    log "warning: cannot save the console log to ${CONSOLE_COPY}"

print_kernel_log() { # [since-marker]
    local file=${TMP}/console.log
    if [[ ! -s ${file} ]]; then
        log "(the guest's console log is empty)"
        return
    fi
    if [[ -n ${1:-} ]] && grep -q "$1" "${file}"; then
        log "---- guest kernel log while the command ran ----"
        sed -n "/$1/,\$p" "${file}" | sed 1d >&2
    else
        log "---- guest kernel log ----"
        cat "${file}" >&2
    fi
    log "---- end of guest kernel log ----"
}
qemu_said() {
    if [[ -s ${TMP}/qemu.log ]]; then
        log "---- QEMU said (exit ${qemu_rc}) ----"
        cat "${TMP}/qemu.log" >&2
    fi
}

if [[ ${timed_out} == 1 ]]; then
    log "guest hung: the command had not finished after ${TIMEOUT} s; QEMU killed"
    [[ ${KERNEL_LOG} == never ]] || print_kernel_log
    exit "${E_HANG}"
fi
if [[ ! -f ${TMP}/ctl/status ]]; then
    if [[ ! -s ${TMP}/console.log ]]; then
        qemu_said
        die "QEMU exited (status ${qemu_rc}) before the guest printed anything"
    fi
    if grep -qE 'Kernel panic|Oops|BUG:' "${TMP}/console.log"; then
        log "guest crashed (kernel panic) after ${elapsed} s"
    else
        log "guest stopped after ${elapsed} s without reporting the command's exit status"
    fi
    [[ ${KERNEL_LOG} == never ]] || print_kernel_log
    qemu_said
    exit "${E_CRASH}"
fi
rc=$(cat "${TMP}/ctl/status")
[[ ${rc} =~ ^[0-9]+$ ]] || die "the guest reported a bad exit status '${rc}'"
log "command exited ${rc}; guest ran ${elapsed} s in all"
if [[ ${KERNEL_LOG} == always ]]; then
    print_kernel_log
elif [[ ${KERNEL_LOG} == failure && ${rc} != 0 ]]; then
    print_kernel_log 'vm-test: command starts'
fi
exit "${rc}"
