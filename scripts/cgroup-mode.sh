#!/usr/bin/env bash
# Prints the host's cgroup mode as Hearth detects it: unified (v2), hybrid or legacy (v1).
root=${1:-/sys/fs/cgroup}
if [ "$(stat -f -c %T "$root")" = cgroup2fs ]; then echo unified
elif [ "$(stat -f -c %T "$root/unified" 2>/dev/null)" = cgroup2fs ]; then echo hybrid
else echo legacy; fi
