#!/usr/bin/env bash
# cp of a dense file through vlunfs (copy_file_range shares whole chunks) against the same cp on
# the raw store (the filesystem that holds the simulated flash image). Not a test: prints times.
# Usage: sudo bench/cp_clone.sh [BUILD_DIR] [SIZE_GIB] [WORK_DIR]
set -euo pipefail
build=$(cd "${1:-$(dirname "$0")/../build}" && pwd)
gib=${2:-10}
work=${3:-/var/tmp/vlunfs-cp-bench}
mkdir -p "$work"
mnt=$work/mnt
img=$work/flash.img
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

seconds() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); awk -v a="$s" -v b="$e" 'BEGIN {printf "%.3f", b - a}'; }

echo "== raw store ($(df -T "$work" | awk 'NR==2 {print $2}') at $work): ${gib} GiB file"
dd if=/dev/urandom of="$work/raw-src" bs=1M count=$((gib * 1024)) status=none
sync
echo 3 > /proc/sys/vm/drop_caches
raw=$(seconds cp "$work/raw-src" "$work/raw-dst")
raw_sync=$(seconds sync)
cmp "$work/raw-src" "$work/raw-dst"
rm -f "$work/raw-src" "$work/raw-dst"

echo "== vlunfs on a sparse image in the same directory"
"$build/mkfs.vlunfs" --size $((gib * 2 + 4))G "$img" >/dev/null
mkdir -p "$mnt"
"$build/vlunfs" "$img" "$mnt"
dd if=/dev/urandom of="$mnt/src" bs=1M count=$((gib * 1024)) status=none
sync
echo 3 > /proc/sys/vm/drop_caches
vl=$(seconds cp "$mnt/src" "$mnt/dst")
vl_sync=$(seconds sync)
cmp "$mnt/src" "$mnt/dst"
free=$(stat -f -c %f "$mnt")
echo
printf '%-28s %10s %10s\n' "cp of ${gib} GiB" "cp (s)" "sync (s)"
printf '%-28s %10.3f %10.3f\n' "raw store" "$raw" "$raw_sync"
printf '%-28s %10.3f %10.3f\n' "vlunfs (chunks shared)" "$vl" "$vl_sync"
awk -v r="$raw" -v v="$vl" -v f="$free" 'BEGIN {printf "speed-up: %.0fx; free chunks after the copy: %s\n", r / v, f}'
