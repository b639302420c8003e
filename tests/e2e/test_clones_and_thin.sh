#!/usr/bin/env bash
# Copy-on-write clones through plain cp (copy_file_range), vlunctl clone/snapshot, thin vLUNs
# with honest ENOSPC, hole punching with SEEK_DATA/SEEK_HOLE, fstrim giving space back, and the
# daemon's fork-safe context clone.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 8G
shared_count() { "$VLUNCTL" fsck "$img" | sed -n 's/.*(\([0-9]*\) shared).*/\1/p'; }
chunks_of() { "$VLUNCTL" ls -rn -o PATH,PHYSICAL "$mnt" | awk -v p="/$1" '$1 == p {print $2}'; }
# The allocator's free chunks: statfs (df) also counts the share reserve of thick vLUNs as used.
pool_free() { "$VLUNCTL" info -rn "$mnt" | awk '$1 == "free_chunks" {print $2}'; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }

log "daemonized mount: the daemon process clones the AFU context it was started with"
mount_fs "$img" "$mnt"
truncate -s 300M "$mnt/seed"
umount_fs "$mnt"
"$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log"   # no -f: forks, the child does VLUN_CLONE
DAEMON_PIDS+=("$(pgrep -n -f "vlunfs $img $mnt")")
ctx=$("$VLUNCTL" ls -rn -o PATH,CONTEXT "$mnt" | awk '$1 == "/seed" {print $2}')
[ "$ctx" != "0x100000001" ] || fail "the daemon still uses its parent's context ($ctx)"
log "the daemon serves /seed through its own context $ctx"
dd if=/dev/urandom of="$mnt/seed" bs=1M count=4 conv=notrunc status=none
seed_sum=$(sha "$mnt/seed")
umount "$mnt"
for _ in $(seq 100); do "$VLUNCTL" info "$img" >/dev/null 2>&1 && break; sleep 0.1; done
fsck_clean "$img"
mount_fs "$img" "$mnt"
expect_eq "$(sha "$mnt/seed")" "$seed_sum" "data written through the cloned context"
rm "$mnt/seed"

log "cp shares whole chunks (copy_file_range) and copies the tail"
head -c $((600 * 1024 * 1024 + 12345)) /dev/urandom > "$WORK/orig"
cp "$WORK/orig" "$mnt/a"
free_before=$(chunk_free "$mnt")
pool_free_before=$(pool_free)
cp "$mnt/a" "$mnt/b"
expect_eq "$(pool_free)" "$pool_free_before" "cp took no chunk"
expect_eq "$(chunk_free "$mnt")" $((free_before - 3)) "df counts the reserve for the 3 shared thick chunks as used"
expect_eq "$(chunks_of b)" "$(chunks_of a)" "the copy maps the same physical chunks"
expect_eq "$(sha "$mnt/b")" "$(sha "$WORK/orig")" "the copy reads the same"

log "writes on either side stay on that side"
printf 'CLONE' | dd of="$mnt/b" bs=1 seek=100 conv=notrunc status=none
printf 'ORIGI' | dd of="$mnt/a" bs=1 seek=300000000 conv=notrunc status=none
cp "$WORK/orig" "$WORK/expect-a"
printf 'ORIGI' | dd of="$WORK/expect-a" bs=1 seek=300000000 conv=notrunc status=none
cp "$WORK/orig" "$WORK/expect-b"
printf 'CLONE' | dd of="$WORK/expect-b" bs=1 seek=100 conv=notrunc status=none
expect_eq "$(sha "$mnt/a")" "$(sha "$WORK/expect-a")" "original after writes on both sides"
expect_eq "$(sha "$mnt/b")" "$(sha "$WORK/expect-b")" "clone after writes on both sides"
expect_eq "$(pool_free)" $((pool_free_before - 2)) "two private copies made (one per side written)"
expect_eq "$(chunk_free "$mnt")" $((free_before - 3)) "the copies came out of the reserve; chunk 2 is still shared"

log "clone of a clone, snapshot, refcounts"
"$VLUNCTL" clone "$mnt/b" "$mnt/c" >/dev/null
"$VLUNCTL" snapshot "$mnt/a" "$mnt/snap" >/dev/null
expect_eq "$(sha "$mnt/c")" "$(sha "$WORK/expect-b")" "clone of a clone"
expect_eq "$(sha "$mnt/snap")" "$(sha "$WORK/expect-a")" "snapshot contents"
expect_fail "Read-only file system" dd if=/dev/zero of="$mnt/snap" bs=4k count=1 conv=notrunc status=none
expect_fail "Read-only file system" truncate -s 1M "$mnt/snap"
expect_fail "Operation not permitted" python3 -c "import os,sys; os.truncate(sys.argv[1], 4096)" "$mnt/snap"
umount_fs "$mnt"
fsck_clean "$img"
[ "$(shared_count)" -ge 2 ] || fail "fsck should see shared chunks, saw $(shared_count)"
mount_fs "$img" "$mnt"
expect_eq "$(sha "$mnt/c")" "$(sha "$WORK/expect-b")" "clone after remount"
expect_eq "$(sha "$mnt/snap")" "$(sha "$WORK/expect-a")" "snapshot after remount"
rm "$mnt/a" "$mnt/b" "$mnt/c" "$mnt/snap"
expect_eq "$(chunk_free "$mnt")" "$(stat -f -c %b "$mnt")" "every chunk back after removing all clones"
umount_fs "$mnt"
fsck_clean "$img"
expect_eq "$(shared_count)" 0 "no shared chunk left"

log "thin vLUNs: overcommit, honest ENOSPC at write time"
mount_fs "$img" "$mnt" -o thin
total=$(stat -f -c %b "$mnt")
truncate -s 10T "$mnt/huge"
expect_eq "$(stat -c %s "$mnt/huge")" $((10 << 40)) "a 10 TiB thin vLUN on 8 GiB of flash"
expect_eq "$(chunk_free "$mnt")" "$total" "nothing allocated before writing"
# truncate's handle was open for writing, and while one is (until the kernel's RELEASE, which
# comes after close(2) returns, reaches the daemon) st_blocks counts the whole size (docs/posix.md).
for _ in $(seq 50); do [ "$(stat -c %b "$mnt/huge")" = 0 ] && break; sleep 0.1; done
expect_eq "$(stat -c %b "$mnt/huge")" 0 "no block provisioned"
dd if=/dev/urandom of="$mnt/huge" bs=1M count=1 seek=$((5 << 20)) conv=notrunc status=none
expect_eq "$(chunk_free "$mnt")" $((total - 1)) "one chunk taken by the first write"
if dd if=/dev/zero of="$mnt/huge" bs=1M count=$(( (total + 2) * 256 )) conv=notrunc status=none 2>"$WORK/dd.err"; then
  fail "writing more than the flash holds succeeded"
fi
grep -q "No space left" "$WORK/dd.err" || fail "ENOSPC expected, got: $(cat "$WORK/dd.err")"
expect_eq "$(chunk_free "$mnt")" 0 "the pool is really full"
rm "$mnt/huge"
expect_eq "$(chunk_free "$mnt")" "$total" "rm of a thin vLUN gives everything back"

log "holes: punch gives chunks back, SEEK_DATA/SEEK_HOLE, cp --sparse=always round trip"
truncate -s 2G "$mnt/sparse"
dd if=/dev/urandom of="$mnt/sparse" bs=1M count=10 conv=notrunc status=none
dd if=/dev/urandom of="$mnt/sparse" bs=1M count=10 seek=1024 conv=notrunc status=none
expect_eq "$(chunk_free "$mnt")" $((total - 2)) "two chunks written"
data_at=$(python3 -c "import os,sys; f=os.open(sys.argv[1],os.O_RDONLY); print(os.lseek(f, 300<<20, os.SEEK_DATA), os.lseek(f, 0, os.SEEK_HOLE))" "$mnt/sparse")
expect_eq "$data_at" "$((1024 << 20)) $((256 << 20))" "SEEK_DATA / SEEK_HOLE"
cp --sparse=always "$mnt/sparse" "$WORK/sparse-copy"
cp --sparse=always "$WORK/sparse-copy" "$mnt/sparse-back"
expect_eq "$(sha "$mnt/sparse-back")" "$(sha "$mnt/sparse")" "sparse round trip"
used_back=$(( $(chunk_free "$mnt") ))
fallocate -p -o $((1024 << 20)) -l $((256 << 20)) "$mnt/sparse"
expect_eq "$(chunk_free "$mnt")" $((used_back + 1)) "a punched chunk goes back to the pool"
expect_eq "$(stat -c %s "$mnt/sparse")" $((2 << 30)) "punching keeps the size"
expect_eq "$(dd if="$mnt/sparse" bs=1M skip=1024 count=1 status=none | tr -d '\0' | wc -c)" 0 "the hole reads zeros"
rm "$mnt/sparse" "$mnt/sparse-back"

log "fstrim of an ext4 inside a thin vLUN returns space"
vol=$WORK/ext4
truncate -s 2G "$mnt/vol"
mkfs.ext4 -q -E nodiscard "$mnt/vol"
mkdir -p "$vol"
mount -o loop "$mnt/vol" "$vol"
LOOP_MOUNTS+=("$vol")
# Nearly full: ext4 keeps backup superblocks in block groups 1, 3, 5, 7 and 9 (the first 1.25 GiB),
# so only chunks past them can become wholly free again.
dd if=/dev/zero of="$vol/big" bs=1M count=1800 status=none
sync
full=$(chunk_free "$mnt")
rm "$vol/big"
sync  # ext4 frees the blocks when its journal commits; only free blocks are trimmed
fstrim "$vol"
sync
after=$(chunk_free "$mnt")
[ "$after" -gt "$full" ] || fail "fstrim gave nothing back ($full -> $after free chunks)"
log "fstrim: $full -> $after free chunks"
umount "$vol"
LOOP_MOUNTS=()
umount_fs "$mnt"
fsck_clean "$img"
