#!/usr/bin/env bash
# The main job: installs, builds, creates a sparse simulated CAPI flash image, mounts it, and shows
# the life cycle of vLUNs with ordinary tools — including an ext4 volume for a container,
# loop-mounted from a vLUN. Leaves everything mounted and says how to unmount.
# Run as root on Debian 12: sudo scripts/demo.sh   (VLUNFS_DEMO_DIR picks the directory)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh
modprobe fuse 2>/dev/null || true
VLUNFS_TARGETS="vlunfs mkfs.vlunfs vlunctl vlun-api-demo" bash scripts/build.sh "$top/build" >/dev/null
B=$top/build
demo=${VLUNFS_DEMO_DIR:-/tmp/vlunfs-demo}
img=$demo/flash.img
mnt=$demo/flash
vol=$demo/container-root

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# A previous demo may still be mounted.
mountpoint -q "$vol" 2>/dev/null && umount "$vol"
if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; sleep 1; fi
mkdir -p "$demo" "$mnt" "$vol"
rm -f "$img"

step "The driver API on the simulated AFU (what a CAPI program does with the cxlflash ioctls)"
run "$B/vlun-api-demo" "$demo/api-demo.img"
rm -f "$demo/api-demo.img"

step "Format a 64 GiB simulated flash image (sparse: it takes almost no disk)"
run "$B/mkfs.vlunfs" --size 64G "$img"
run du -h --apparent-size "$img"
run du -h "$img"

step "Mount it"
run "$B/vlunfs" "$img" "$mnt"
run df -h "$mnt"

step "Provision vLUNs with truncate (VLUN_RESIZE, whole 256 MiB chunks, byte-exact sizes)"
run truncate -s 10G "$mnt/vol1"
run truncate -s 1000 "$mnt/tiny"
run ls -ls "$mnt"
run df -h "$mnt"

step "Move data with dd and cp (READ(16)/WRITE(16) IOARCBs translated through each file's LXT)"
run dd if=/dev/urandom of="$mnt/vol1" bs=1M count=64 conv=notrunc,fsync status=none
run cp "$mnt/vol1" "$mnt/vol1-copy"
run cmp "$mnt/vol1" "$mnt/vol1-copy"
run "$B/vlunctl" ls "$mnt"

step "rm releases the chunks (zeroed before anyone gets them again)"
run rm "$mnt/vol1-copy"
run df -h "$mnt"

step "A container volume: ext4 inside a 2 GiB vLUN, loop-mounted"
run truncate -s 2G "$mnt/container.ext4"
run mkfs.ext4 -q "$mnt/container.ext4"
run mount -o loop "$mnt/container.ext4" "$vol"
run mkdir -p "$vol/etc" "$vol/var/lib/app"
echo "hello from a vLUN" > "$vol/etc/motd"
run dd if=/dev/urandom of="$vol/var/lib/app/data" bs=1M count=32 status=none
run df -h "$vol"
run cat "$vol/etc/motd"
run "$B/vlunctl" ls "$mnt"

cat <<MSG

The demo is still mounted:
  simulated flash image  $img
  vlunfs mount           $mnt
  ext4 in a vLUN         $vol
To unmount:
  sudo umount $vol && sudo umount $mnt
To check the image afterwards:
  sudo $B/vlunctl fsck $img
MSG
