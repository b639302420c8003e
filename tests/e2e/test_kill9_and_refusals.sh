#!/usr/bin/env bash
# kill -9 of the daemon: remount works, fsck is clean, fsynced data is intact. And the mount
# refusals: a second daemon on the same image, an unformatted image, a corrupt one.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 8G
mount_fs "$img" "$mnt"

log "a second daemon on the same image is refused"
mkdir -p "$WORK/mnt2"
expect_fail "in use" "$VLUNFS" -f "$img" "$WORK/mnt2"

dd if=/dev/urandom of="$WORK/data" bs=1M count=16 status=none
dd if="$WORK/data" of="$mnt/synced" bs=1M conv=fsync status=none
mkdir "$mnt/dir"
truncate -s 700M "$mnt/dir/vol"
sync_sum=$(sha256sum < "$WORK/data")

log "kill -9 while idle, then remount"
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
umount -l "$mnt" 2>/dev/null || true
fsck_clean "$img"
mount_fs "$img" "$mnt"
expect_eq "$(sha256sum < "$mnt/synced")" "$sync_sum" "fsynced file after kill -9"
expect_eq "$(stat -c %s "$mnt/dir/vol")" $((700 << 20)) "truncated size after kill -9"

log "kill -9 in the middle of writes"
( for i in $(seq 200); do truncate -s $((i * 3))M "$mnt/busy-$((i % 7))"; echo "$i" > "$mnt/dir/n-$((i % 13))"; done ) &
writer=$!
sleep 0.3
kill -9 "$MOUNT_PID"
wait "$writer" 2>/dev/null || true
wait "$MOUNT_PID" 2>/dev/null || true
umount -l "$mnt" 2>/dev/null || true
fsck_clean "$img"
mount_fs "$img" "$mnt"
expect_eq "$(sha256sum < "$mnt/synced")" "$sync_sum" "fsynced file after a busy kill -9"
umount_fs "$mnt"
fsck_clean "$img"

log "refusals: unformatted, corrupt, missing"
truncate -s 1G "$WORK/blank.img"
expect_fail "not formatted with vlunfs" "$VLUNFS" -f "$WORK/blank.img" "$WORK/mnt2"
cp --sparse=always "$img" "$WORK/corrupt.img"
dd if=/dev/urandom of="$WORK/corrupt.img" bs=4096 count=2 conv=notrunc status=none
out=$("$VLUNFS" -f "$WORK/corrupt.img" "$WORK/mnt2" 2>&1) && fail "mounted an image with both superblocks destroyed"
log "corrupt image refused with: $out"
expect_fail "No such file" "$VLUNFS" -f "$WORK/missing.img" "$WORK/mnt2"
mountpoint -q "$WORK/mnt2" && fail "something got mounted on mnt2"
true
