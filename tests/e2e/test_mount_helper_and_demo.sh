#!/usr/bin/env bash
# mount -t vlunfs and an fstab line work through mount.vlunfs; the README's demo runs and can be
# unmounted as it says.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 4G
mkdir -p "$mnt"

helper=/sbin/mount.vlunfs
installed_here=0
if [ ! -e "$helper" ]; then
  ln -s "$BUILD/mount.vlunfs" "$helper"
  installed_here=1
fi
[ "$installed_here" -eq 1 ] && CLEANUP_HOOKS+=("rm -f $helper")

log "mount -t vlunfs"
mount -t vlunfs "$img" "$mnt"
mountpoint -q "$mnt" || fail "mount -t vlunfs did not mount"
grep -q " $mnt fuse.vlunfs " /proc/mounts || fail "not a fuse.vlunfs mount"
truncate -s 300M "$mnt/vol"
echo persisted > "$mnt/note"
umount "$mnt"
"$VLUNCTL" info "$img" >/dev/null || fail "vlunctl info right after umount"

log "an fstab line (mount -T FSTAB MOUNTPOINT), with options"
cat > "$WORK/fstab" <<FSTAB
$img  $mnt  vlunfs  defaults,ro,noauto,_netdev  0  0
FSTAB
mount -T "$WORK/fstab" "$mnt"
expect_eq "$(cat "$mnt/note")" persisted "data through the fstab mount"
grep " $mnt " /proc/mounts | grep -q "ro," || fail "fstab 'ro' did not make a read-only mount"
expect_fail "Read-only file system" truncate -s 1G "$mnt/vol"
expect_fail "Read-only file system" touch "$mnt/new"
expect_eq "$(stat -c %s "$mnt/vol")" $((300 << 20)) "read-only mount keeps the size"
umount "$mnt"
fsck_clean "$img"

log "the README demo"
demo=$WORK/demo
VLUNFS_DEMO_DIR=$demo bash "$(dirname "$0")/../../scripts/demo.sh" > "$WORK/demo.out" 2>&1 || { cat "$WORK/demo.out"; fail "demo failed"; }
grep -q "hello from a vLUN" "$WORK/demo.out" || fail "demo did not show the ext4 volume"
# The demo's closing instructions, as it prints them: no pause between the unmount and fsck.
umount "$demo/container-root" || fail "umount of the demo's ext4 volume"
umount "$demo/flash" || fail "umount of the demo's mount"
fsck_clean "$demo/flash.img"
