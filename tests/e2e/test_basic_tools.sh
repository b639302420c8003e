#!/usr/bin/env bash
# Ordinary tools on a mounted image: truncate, dd, cp, mv, rm, df, du, stat, ln, mkdir; contents
# survive unmount + remount; refused file types and names.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 64G
mount_fs "$img" "$mnt"

chunk=$((256 << 20))
total=$(stat -f -c %b "$mnt")
expect_eq "$(stat -f -c %S "$mnt")" "$chunk" "statfs fragment size is the chunk"
expect_eq "$(chunk_free "$mnt")" "$total" "fresh pool is all free"

log "truncate provisions whole chunks, st_size stays byte exact"
truncate -s 100G "$mnt/too-big" 2>/dev/null && fail "a 100G vLUN on 64G of flash"
truncate -s 1000 "$mnt/vol1"
expect_eq "$(stat -c %s "$mnt/vol1")" 1000 "st_size"
expect_eq "$(stat -c %b "$mnt/vol1")" $((chunk / 512)) "st_blocks counts one chunk"
expect_eq "$(chunk_free "$mnt")" $((total - 1)) "one chunk used"
truncate -s 600M "$mnt/vol1"
expect_eq "$(chunk_free "$mnt")" $((total - 3)) "600M takes 3 chunks"
truncate -s 300M "$mnt/vol1"
expect_eq "$(chunk_free "$mnt")" $((total - 2)) "shrink gives a chunk back"
expect_eq "$(od -An -tx1 -j 299M -N 16 "$mnt/vol1" | tr -d ' \n')" "00000000000000000000000000000000" "new space reads zeros"

log "dd, cp, mv, sha256"
dd if=/dev/urandom of="$WORK/data" bs=1M count=40 status=none
dd if="$WORK/data" of="$mnt/vol1" bs=1M conv=notrunc status=none
dd if=/dev/urandom of="$WORK/odd" bs=12345 count=7 status=none   # unaligned size and edges
cp "$WORK/odd" "$mnt/odd"
mkdir -p "$mnt/dir/sub"
cp "$WORK/data" "$mnt/dir/sub/copy"
mv "$mnt/odd" "$mnt/dir/odd-moved"
printf 'abc' | dd of="$mnt/dir/odd-moved" bs=1 seek=5000 conv=notrunc status=none
cp "$WORK/odd" "$WORK/odd-expected"
printf 'abc' | dd of="$WORK/odd-expected" bs=1 seek=5000 conv=notrunc status=none
ln -s dir/sub/copy "$mnt/link"
ln "$mnt/dir/sub/copy" "$mnt/hardlink"
expect_eq "$(stat -c %h "$mnt/hardlink")" 2 "hard link count"
expect_eq "$(readlink "$mnt/link")" "dir/sub/copy" "symlink target"
sha_vol=$(head -c 40M "$mnt/vol1" | sha256sum | cut -d' ' -f1)
expect_eq "$sha_vol" "$(sha256sum < "$WORK/data" | cut -d' ' -f1)" "dd data through vol1"
expect_eq "$(sha256sum < "$mnt/link" | cut -d' ' -f1)" "$(sha256sum < "$WORK/data" | cut -d' ' -f1)" "cp through symlink"
expect_eq "$(sha256sum < "$mnt/dir/odd-moved" | cut -d' ' -f1)" "$(sha256sum < "$WORK/odd-expected" | cut -d' ' -f1)" "unaligned write"
du -s "$mnt" >/dev/null
df -h "$mnt" >/dev/null
chmod 640 "$mnt/dir/odd-moved"
touch -d '2001-02-03 04:05:06' "$mnt/dir/odd-moved"
sums_before=$(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
stat_before=$(stat -c '%n %s %a %Y %h' "$mnt/dir/odd-moved" "$mnt/vol1" "$mnt/hardlink")

log "remount: everything as it was"
umount_fs "$mnt"
fsck_clean "$img"
mount_fs "$img" "$mnt"
expect_eq "$(cd "$mnt" && find . -type f -print0 | sort -z | xargs -0 sha256sum)" "$sums_before" "checksums after remount"
expect_eq "$(stat -c '%n %s %a %Y %h' "$mnt/dir/odd-moved" "$mnt/vol1" "$mnt/hardlink")" "$stat_before" "attributes after remount"
expect_eq "$(readlink "$mnt/link")" "dir/sub/copy" "symlink after remount"

log "rename flavours, rmdir, rm gives chunks back"
touch "$mnt/a" "$mnt/b"
echo A > "$mnt/a"
echo B > "$mnt/b"
renameat2() {  # renameat2 FROM TO FLAG: RENAME_NOREPLACE=1, RENAME_EXCHANGE=2
  python3 - "$@" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
src, dst, flag = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
if libc.renameat2(-100, src, -100, dst, flag) != 0:
    e = ctypes.get_errno()
    sys.exit(os.strerror(e))
PY
}
renameat2 "$mnt/a" "$mnt/b" 2
expect_eq "$(cat "$mnt/a")" B "RENAME_EXCHANGE swapped a"
expect_eq "$(cat "$mnt/b")" A "RENAME_EXCHANGE swapped b"
expect_fail "File exists" renameat2 "$mnt/a" "$mnt/b" 1
renameat2 "$mnt/a" "$mnt/c" 1
expect_eq "$(cat "$mnt/c")" B "RENAME_NOREPLACE to a free name"
mv "$mnt/c" "$mnt/a"
expect_fail "Directory not empty" rmdir "$mnt/dir"
used_before=$(chunk_free "$mnt")
rm "$mnt/vol1"
expect_eq "$(chunk_free "$mnt")" $((used_before + 2)) "rm released vol1's chunks"
rm -r "$mnt/dir" "$mnt/hardlink" "$mnt/link" "$mnt/a" "$mnt/b"
expect_eq "$(chunk_free "$mnt")" "$total" "everything released"

log "refused: long names (special files: test_special_files.sh)"
long=$(printf 'x%.0s' $(seq 256))
expect_fail "File name too long" touch "$mnt/$long"
touch "$mnt/$(printf 'y%.0s' $(seq 255))"

chunks_df=$(stat -f -c %b "$mnt")  # statfs counts chunks: the pool files can be given
umount_fs "$mnt"
fsck_clean "$img"
log "vlunctl info counts the chunks df counts (the data area's last is the zero chunk, nobody's)"
info_total=$("$VLUNCTL" info -rn -o total_chunks "$img" | awk '$1 == "total_chunks" {print $2}')
expect_eq "$info_total" "$chunks_df" "chunks total in vlunctl info"
