#!/usr/bin/env bash
# Lists anything Hearth created and left behind on this host, and exits non-zero if there
# is any: sandbox cgroups, processes inside Hearth's cgroups, mounts, loop devices and
# scratch images of sandboxes, network namespaces.
#
# Hearth's idle infrastructure (its empty parent cgroups, scratch templates, the staging
# directory) is reported as a note; with --strict it counts as a leftover too (`hearth gc`
# removes it).
#
# Usage: scripts/check-leaks.sh [--strict]
set -u
strict=0
[ "${1:-}" = "--strict" ] && strict=1

STATE_DIR=${HEARTH_STATE_DIR:-/var/lib/hearth}
RUN_DIR=${HEARTH_RUN_DIR:-/run/hearth}
CG_ROOT=${HEARTH_CGROUP_ROOT:-/sys/fs/cgroup}
CG_PARENT=${HEARTH_CGROUP_PARENT:-hearth}

leaks=0
leak() { printf 'leak: %s\n' "$*"; leaks=$((leaks + 1)); }
note() { if [ "$strict" = 1 ]; then leak "$*"; else printf 'note: %s\n' "$*"; fi; }

# 1. cgroups: Hearth's parent in every hierarchy (v1: <root>/<controller>/hearth; v2:
#    <root>/hearth, and <own>/sandboxes when this script runs in a cgroup delegated to
#    Hearth, or in its supervisor leaf), and anything below it.
parents=()
if [ "$(stat -f -c %T "$CG_ROOT" 2>/dev/null)" = cgroup2fs ]; then
  [ -d "$CG_ROOT/$CG_PARENT" ] && parents+=("$CG_ROOT/$CG_PARENT")
  own=$(sed -n 's/^0:://p' /proc/self/cgroup)
  own=${own%/supervisor}
  if [ -n "$own" ] && [ "$own" != / ] && [ -d "$CG_ROOT$own/sandboxes" ]; then
    parents+=("$CG_ROOT$own/sandboxes")
  fi
else
  for h in "$CG_ROOT"/*/; do
    [ -d "$h$CG_PARENT" ] && parents+=("${h%/}/$CG_PARENT")
  done
fi
for p in "${parents[@]}"; do
  found_child=0
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    found_child=1
    leak "cgroup $d"
    while read -r pid; do
      [ -n "$pid" ] && leak "process $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) in $d"
    done < "$d/cgroup.procs"
  done < <(find "$p" -mindepth 1 -type d 2>/dev/null)
  while read -r pid; do
    [ -n "$pid" ] && leak "process $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) in $p"
  done < "$p/cgroup.procs"
  [ "$found_child" = 0 ] && note "empty parent cgroup $p"
done

# 1b. `hearth bench peers`' own parent (its containers' and bwrap's cgroups), in every
#     hierarchy; it removes it at the end of a run.
for d in "$CG_ROOT"/hearth-bench-peers-* "$CG_ROOT"/*/hearth-bench-peers-*; do
  [ -d "$d" ] && leak "cgroup of hearth bench peers: $d"
done

# 2. processes that are sandbox inits or probes, wherever they are.
for st in /proc/[0-9]*/status; do
  pid=${st#/proc/}; pid=${pid%/status}
  comm=$(cat /proc/"$pid"/comm 2>/dev/null) || continue
  case "$comm" in
    hearth-probe) leak "process $pid ($comm)" ;;
  esac
done

# 3. mounts visible on the host that belong to a sandbox (sandbox mounts live in their own
#    mount namespace; one showing here escaped it).
while read -r _ _ _ _ mnt _; do
  case "$mnt" in
    "$RUN_DIR"/*|"$STATE_DIR"/*) leak "mount $mnt" ;;
  esac
done < /proc/self/mountinfo

# 4. loop devices backed by Hearth's scratch images.
for bf in /sys/block/loop*/loop/backing_file; do
  [ -r "$bf" ] || continue
  case "$(cat "$bf")" in
    "$STATE_DIR"/*) leak "loop device /dev/$(basename "$(dirname "$(dirname "$bf")")") -> $(cat "$bf")" ;;
  esac
done

# 5. scratch images of sandboxes; templates are infrastructure.
if [ -d "$STATE_DIR/scratch" ]; then
  for f in "$STATE_DIR"/scratch/*; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in
      template-*) note "scratch template $f" ;;
      *) leak "scratch file $f" ;;
    esac
  done
fi
[ -d "$RUN_DIR" ] && note "run directory $RUN_DIR"

# 6. named network namespaces Hearth would have made.
if command -v ip >/dev/null 2>&1; then
  while read -r ns _; do
    case "$ns" in hearth*) leak "netns $ns" ;; esac
  done < <(ip netns list 2>/dev/null)
fi

if [ "$leaks" -gt 0 ]; then
  echo "check-leaks: $leaks leftover(s)"
  exit 1
fi
echo "check-leaks: clean"
