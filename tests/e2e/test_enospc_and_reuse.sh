#!/usr/bin/env bash
# Full flash: ENOSPC leaves the file exactly as it was and the pool accounting exact; a deleted
# file's data never shows up in a new file.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 3G   # a handful of 256 MiB chunks
mount_fs "$img" "$mnt"
total=$(stat -f -c %b "$mnt")
[ "$total" -ge 4 ] || fail "expected at least 4 chunks, got $total"

log "fill with a recognisable pattern, then delete"
truncate -s $(( (total - 1) * 256 ))M "$mnt/hog"
{ yes "SECRET-DATA-OF-A-DELETED-FILE" || true; } | head -c 300M | dd of="$mnt/hog" bs=1M conv=notrunc status=none
truncate -s 256M "$mnt/keep"
dd if=/dev/urandom of="$mnt/keep" bs=1M count=8 conv=notrunc status=none
keep_sum=$(sha256sum < "$mnt/keep")
expect_eq "$(chunk_free "$mnt")" 0 "pool full"

log "ENOSPC: truncate and write past the end fail and change nothing"
expect_fail "No space left on device" truncate -s 300M "$mnt/keep"
expect_eq "$(stat -c %s "$mnt/keep")" $((256 << 20)) "size unchanged after ENOSPC"
expect_eq "$(sha256sum < "$mnt/keep")" "$keep_sum" "contents unchanged after ENOSPC"
expect_fail "No space left on device" dd if=/dev/zero of="$mnt/keep" bs=1M count=1 seek=300 conv=notrunc status=none
expect_eq "$(stat -c %s "$mnt/keep")" $((256 << 20)) "size unchanged after a failed write"
expect_fail "No space left on device" fallocate -l 1G "$mnt/new"
expect_eq "$(stat -c %s "$mnt/new")" 0 "fallocate ENOSPC leaves an empty file"
expect_eq "$(chunk_free "$mnt")" 0 "accounting exact after the failures"
rm "$mnt/new"

log "deleted data never reappears"
rm "$mnt/hog"
expect_eq "$(chunk_free "$mnt")" $((total - 1)) "chunks back in the pool"
truncate -s $(( (total - 1) * 256 ))M "$mnt/fresh"
if grep -qa "SECRET-DATA" "$mnt/fresh"; then fail "a new vLUN shows a deleted file's data"; fi
expect_eq "$(tr -d '\0' < "$mnt/fresh" | head -c 1 | wc -c)" 0 "new vLUN reads as zeros"

log "shrink then grow inside a chunk reads zeros"
printf 'XXXXXXXXXXXXXXXX' | dd of="$mnt/keep" bs=1 seek=1000 conv=notrunc status=none
truncate -s 1000 "$mnt/keep"
truncate -s 4096 "$mnt/keep"
expect_eq "$(od -An -tx1 -j 1000 -N 16 "$mnt/keep" | tr -d ' \n')" "00000000000000000000000000000000" "bytes past an old end"

umount_fs "$mnt"
fsck_clean "$img"
