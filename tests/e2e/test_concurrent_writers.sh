#!/usr/bin/env bash
# Two processes writing different files at once, plus readers; everything verifies.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 8G
mount_fs "$img" "$mnt"
dd if=/dev/urandom of="$WORK/a" bs=1M count=64 status=none
dd if=/dev/urandom of="$WORK/b" bs=1M count=64 status=none
for round in 1 2 3; do
  dd if="$WORK/a" of="$mnt/a" bs=64k status=none &
  p1=$!
  dd if="$WORK/b" of="$mnt/b" bs=4k oflag=direct status=none &
  p2=$!
  wait $p1 || fail "writer a"
  wait $p2 || fail "writer b"
  cmp "$WORK/a" "$mnt/a" || fail "file a differs (round $round)"
  cmp "$WORK/b" "$mnt/b" || fail "file b differs (round $round)"
done
umount_fs "$mnt"
fsck_clean "$img"
