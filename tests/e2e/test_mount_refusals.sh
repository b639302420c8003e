#!/usr/bin/env bash
# Mounting where it must not: on a directory that already holds a vlunfs mount (refused, nothing
# mounted twice) and on the dead mount a killed daemon leaves (refused with what to do; after
# that, mounting works). mount -o remount,ro|rw through mount.fuse.vlunfs, and the remounts that
# cannot work refused with a message.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
other=$WORK/other.img
mnt=$WORK/mnt
make_image "$img" 1G --chunk-shift 8
make_image "$other" 1G --chunk-shift 8

mounts_on() { grep -c " $1 " /proc/self/mountinfo || true; }

log "a directory that already holds a vlunfs mount is refused, for another image and for the same one"
mount_fs "$img" "$mnt"
echo first > "$mnt/which"
expect_fail "already holds a vlunfs mount (of $img)" "$VLUNFS" "$other" "$mnt"
expect_fail "unmount it first (umount $mnt)" "$VLUNFS" -f "$other" "$mnt"
expect_fail "already holds a vlunfs mount" "$VLUNFS" "$img" "$mnt"
expect_eq "$(mounts_on "$mnt")" 1 "mounts on $mnt after the refusals"
expect_eq "$(cat "$mnt/which")" first "the mount still serves the first image"
# The refused daemons left the other image free.
fsck_clean "$other"

log "after kill -9 the dead mount is refused with what to do"
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
expect_fail "Transport endpoint is not connected" stat "$mnt"
expect_fail "unmount the dead mount first: umount $mnt" "$VLUNFS" "$img" "$mnt"
expect_fail "unmount the dead mount first" "$VLUNFS" -f "$other" "$mnt"
expect_eq "$(mounts_on "$mnt")" 1 "mounts on $mnt (the dead one only)"
umount "$mnt"  # what the message says
fsck_clean "$img"
mount_fs "$img" "$mnt"
expect_eq "$(cat "$mnt/which")" first "the image after kill -9 and the remount"

log "mount -o remount,ro and back to rw (mount.fuse.vlunfs)"
helper=/sbin/mount.fuse.vlunfs
if [ ! -e "$helper" ]; then
  ln -s "$BUILD/mount.fuse.vlunfs" "$helper"
  CLEANUP_HOOKS+=("rm -f $helper")
fi
dd if=/dev/urandom of="$WORK/data" bs=64k count=20 status=none
cp "$WORK/data" "$mnt/unsynced"  # no fsync: remount,ro makes it durable
mount -o remount,ro "$mnt" || fail "mount -o remount,ro"
grep " $mnt " /proc/self/mountinfo | grep -q " ro," || fail "remount,ro did not make the mount read-only"
expect_fail "Read-only file system" touch "$mnt/new"
expect_fail "Read-only file system" truncate -s 1M "$mnt/which"
expect_eq "$(cat "$mnt/which")" first "reads on the read-only mount"
mount -o remount,rw "$mnt" || fail "mount -o remount,rw"
echo second > "$mnt/which"
expect_eq "$(cat "$mnt/which")" second "a write after remount,rw"
mount -o remount,ro "$mnt" || fail "mount -o remount,ro again"
# A crash while read-only loses nothing: remount,ro made every file durable.
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
umount "$mnt"
mount_fs "$img" "$mnt"
cmp "$WORK/data" "$mnt/unsynced" || fail "a file written before remount,ro is not intact after kill -9"
expect_eq "$(cat "$mnt/which")" second "what was written before remount,ro"

log "remounts that cannot work are refused"
expect_fail "remount with 'thin' is not supported" mount -o remount,thin "$mnt"
grep " $mnt " /proc/self/mountinfo | grep -q " rw," || fail "a refused remount changed the mount"
touch "$mnt/still-writable"
umount_fs "$mnt"
mount_fs "$img" "$mnt" -o ro
expect_fail "serves $img read-only" mount -o remount,rw "$mnt"
expect_fail "Read-only file system" touch "$mnt/new"
expect_fail "is not a vlunfs mount" "$BUILD/mount.fuse.vlunfs" "$img" "$WORK" -o remount,ro
umount_fs "$mnt"
fsck_clean "$img"
