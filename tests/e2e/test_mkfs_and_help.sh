#!/usr/bin/env bash
# mkfs.vlunfs: sizes, refusals without --force, 512-byte blocks; --help on every program.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
log "creates a sparse image of the given size"
"$MKFS" --size 20G "$img" | grep -q "vlunfs format 2" || fail "mkfs output"
expect_eq "$(stat -c %s "$img")" $((20 << 30)) "image size"
[ "$(du -k "$img" | cut -f1)" -lt $((64 << 10)) ] || fail "the image is not sparse: $(du -h "$img")"

log "refuses to overwrite vlunfs or another filesystem without --force"
expect_fail "already holds a vlunfs" "$MKFS" "$img"
"$MKFS" --force "$img" >/dev/null
truncate -s 1G "$WORK/ext4.img"
mkfs.ext4 -q "$WORK/ext4.img"
expect_fail "holds ext4" "$MKFS" "$WORK/ext4.img"
"$MKFS" --force "$WORK/ext4.img" >/dev/null
"$VLUNCTL" info "$WORK/ext4.img" | grep -q "format        vlunfs 2" || fail "info after --force"

log "bad input gets a clear error"
expect_fail "give --size" "$MKFS" "$WORK/missing.img"
expect_fail "bad size" "$MKFS" --size 12Q "$WORK/x.img"
expect_fail "cannot format" "$MKFS" --size 1M "$WORK/tiny.img"
[ ! -e "$WORK/x.img" ] || fail "a refused mkfs left an image behind"

log "512-byte blocks: the vLUN life cycle works the same"
"$MKFS" --size 4G --block-size 512 "$WORK/b512.img" >/dev/null
mnt=$WORK/mnt
mount_fs "$WORK/b512.img" "$mnt"
dd if=/dev/urandom of="$WORK/data" bs=1000 count=3000 status=none
cp "$WORK/data" "$mnt/f"
truncate -s 100M "$mnt/g"
cmp "$WORK/data" "$mnt/f" || fail "data through 512-byte blocks"
umount_fs "$mnt"
fsck_clean "$WORK/b512.img"

log "--help on every program"
"$VLUNFS" --help | grep -q "usage: " || fail "vlunfs --help"
"$MKFS" --help | grep -q -- "--size" || fail "mkfs.vlunfs --help"
"$VLUNCTL" --help | grep -q "fsck" || fail "vlunctl --help"
{ "$BUILD/mount.vlunfs" 2>&1 || true; } | grep -q "usage" || fail "mount.vlunfs usage"
