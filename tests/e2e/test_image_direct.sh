#!/usr/bin/env bash
# -o image_direct: the daemon opens the image with O_DIRECT, so what goes through the mount is not
# cached a second time in the image's page cache (fincore), while data round-trips (dd at 1 MiB,
# unaligned small writes, cmp after the caches are dropped and after a remount), fsynced data
# survives kill -9, fsck stays clean, and an image on a filesystem without direct I/O (ramfs) is
# refused with what to do.
source "$(dirname "$0")/lib.sh" "$1"

command -v fincore >/dev/null || fail "fincore (util-linux) is missing"
tmpfs=0
[ "$(stat -f -c %T "$WORK")" = tmpfs ] && tmpfs=1

# cached_mib FILE: MiB of FILE in the page cache.
cached_mib() { echo $(( $(fincore --bytes --noheadings --output RES "$1") >> 20 )); }

dd if=/dev/urandom of="$WORK/data" bs=1M count=64 status=none
dd if=/dev/urandom of="$WORK/patch" bs=1000 count=7 status=none

# workload IMAGE MNT [options]: 64 MiB written with fsync, 7,000 bytes patched at an odd offset,
# everything read back; CACHED_MIB is then the image's cached MiB. (Not a command substitution:
# the daemon started in one would keep its output open and lose MOUNT_PID.)
workload() {
  local img=$1 mnt=$2
  shift 2
  make_image "$img" 2G
  sync
  echo 3 >/proc/sys/vm/drop_caches
  mount_fs "$img" "$mnt" "$@"
  dd if="$WORK/data" of="$mnt/f" bs=1M conv=fsync status=none
  dd if="$WORK/patch" of="$mnt/f" bs=1000 seek=4097 conv=notrunc,fsync status=none
  cmp "$WORK/expect" "$mnt/f" || fail "file differs after writing it ($*)"
  CACHED_MIB=$(cached_mib "$img")
}
cp "$WORK/data" "$WORK/expect"
dd if="$WORK/patch" of="$WORK/expect" bs=1000 seek=4097 conv=notrunc status=none

log "without -o image_direct the image's page cache fills"
workload "$WORK/buffered.img" "$WORK/mnt-buffered"
buffered_mib=$CACHED_MIB
umount_fs "$WORK/mnt-buffered"
fsck_clean "$WORK/buffered.img"
log "  image cached: $buffered_mib MiB"
rm -f "$WORK/buffered.img"

log "with -o image_direct it stays (near) empty"
img=$WORK/flash.img
mnt=$WORK/mnt
workload "$img" "$mnt" -o image_direct
direct_mib=$CACHED_MIB
log "  image cached: $direct_mib MiB"
if [ $tmpfs = 0 ]; then
  [ "$buffered_mib" -ge 48 ] || fail "without image_direct only $buffered_mib MiB of 64 were cached: the comparison means nothing"
  [ "$direct_mib" -le 4 ] || fail "with image_direct the image still had $direct_mib MiB in the page cache"
else
  log "  $WORK is tmpfs, whose pages are the image itself: page-cache checks skipped"
fi
grep -qw image_direct /proc/"$MOUNT_PID"/cmdline || fail "the daemon was not started with image_direct"
flags=$(awk '/^flags:/ {print $2}' /proc/"$MOUNT_PID"/fdinfo/"$(for fd in /proc/"$MOUNT_PID"/fd/*; do [ "$fd" -ef "$img" ] && basename "$fd"; done | head -1)")
(( (8#$flags & 8#40000) != 0 )) || fail "the daemon's image descriptor has no O_DIRECT (flags $flags)"

echo 3 >/proc/sys/vm/drop_caches
cmp "$WORK/expect" "$mnt/f" || fail "file differs after dropping the page cache"

log "kill -9: fsynced data intact, fsck clean"
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
umount -l "$mnt" 2>/dev/null || true
fsck_clean "$img"
mount_fs "$img" "$mnt" -o image_direct
cmp "$WORK/expect" "$mnt/f" || fail "fsynced file differs after kill -9"
umount_fs "$mnt"
fsck_clean "$img"
mount_fs "$img" "$mnt"
cmp "$WORK/expect" "$mnt/f" || fail "file differs when mounted again without image_direct"
umount_fs "$mnt"

log "an image on ramfs (no direct I/O) is refused with what to do"
mkdir -p "$WORK/ramfs"
mount -t ramfs vlunfs-test "$WORK/ramfs"
LOOP_MOUNTS+=("$WORK/ramfs")
make_image "$WORK/ramfs/flash.img" 1G
expect_fail "refuses O_DIRECT (-o image_direct); mount without -o image_direct" \
  "$VLUNFS" -f -o image_direct "$WORK/ramfs/flash.img" "$WORK/mnt"
mountpoint -q "$WORK/mnt" && fail "a refused mount left something mounted"
umount "$WORK/ramfs"
