#!/usr/bin/env bash
# vlunfs on a block device (a loop device over a file here) instead of an image file: mkfs refuses
# a device that holds another filesystem unless forced, and refuses --size; the mount serves
# truncate, dd, cp (clones) and rm, with write-behind on as by default; the data survives a
# remount and a dropped page cache; chunks go back to the pool when their last owner lets go, and a
# regrown range reads as zeros; fsck finds the device clean. mkfs never harms a device in use: a
# mounted ext4 (or a device held by device mapper) is refused, even with --force, with a message
# that names the mount (or the holder), and not one byte of it changes. mkfs erases the device by
# an unmap that zeroes, so the loop device's backing file stays sparse.
source "$(dirname "$0")/lib.sh" "$1"

backing=$WORK/backing.img
mnt=$WORK/mnt
truncate -s 3G "$backing"
dev=$(losetup -f --show "$backing") || fail "no loop device"  # lib.sh's cleanup detaches it

log "mkfs on $dev: refusals first"
mkfs.ext4 -q -F "$dev"
expect_fail "use --force" "$MKFS" "$dev"
expect_fail "is a block device" "$MKFS" --size 1G "$dev"

log "a mounted ext4 is refused, --force or not, and keeps every byte"
mkdir -p "$WORK/ext4"
mount "$dev" "$WORK/ext4"
LOOP_MOUNTS+=("$WORK/ext4")
echo "still here" >"$WORK/ext4/file"
# Read-only from here, so that the ext4 itself (its lazy inode table init, its journal) writes
# nothing while the first MiB is compared; the device stays claimed by the mount all the same.
mount -o remount,ro "$WORK/ext4"
first_mib() { head -c $((1 << 20)) "$dev" | sha256sum; }
before=$(first_mib)
for force in "" --force; do
  expect_fail "is in use: mounted on $WORK/ext4 (ext4)" "$MKFS" $force "$dev"
  expect_fail "will not make a filesystem here" "$MKFS" $force "$dev"
done
expect_eq "$(first_mib)" "$before" "the first MiB of the mounted device after mkfs"
umount "$WORK/ext4"
e2fsck -fn "$dev" >/dev/null 2>&1 || fail "the ext4 is damaged after the refused mkfs"
mount "$dev" "$WORK/ext4"
expect_eq "$(cat "$WORK/ext4/file")" "still here" "a file on the ext4"
umount "$WORK/ext4"

log "a device held by device mapper is refused with its holder's name"
dm=vlunfs-test-$$
if dmsetup create "$dm" --table "0 $(blockdev --getsz "$dev") linear $dev 0" 2>/dev/null; then
  CLEANUP_HOOKS+=("dmsetup remove $dm 2>/dev/null")
  holder=$(basename "$(readlink -f "/dev/mapper/$dm")")
  expect_fail "is in use: held by $holder" "$MKFS" --force "$dev"
  dmsetup remove "$dm"
else
  log "  (no device mapper here: skipped)"
fi

log "mkfs erases by unmapping: the loop device's backing file stays sparse"
"$MKFS" --force "$dev" >/dev/null
used_kib=$(du -k "$backing" | cut -f1)
[ "$used_kib" -lt $((64 << 10)) ] || fail "mkfs wrote the 3 GiB device out: its backing file uses $used_kib KiB"
expect_fail "already holds a vlunfs" "$MKFS" "$dev"

log "mount it; write through the vLUN layer"
mount_fs "$dev" "$mnt"
grep -F " $mnt " /proc/mounts | grep -qF "$dev" || fail "/proc/mounts does not name $dev"
expect_fail "is in use: mounted on $mnt (fuse.vlunfs)" "$MKFS" --force "$dev"
dd if=/dev/urandom of="$WORK/data" bs=1M count=300 status=none
truncate -s 600M "$mnt/vol"
# 300 MiB in 1 MiB writes crosses 8 MiB write-behind windows and a 256 MiB chunk boundary.
dd if="$WORK/data" of="$mnt/vol" bs=1M conv=notrunc status=none
dd if="$WORK/data" of="$mnt/vol" bs=4k seek=$((400 * 256)) count=1000 conv=notrunc status=none
cp "$mnt/vol" "$mnt/copy"
sync
cmp -n $((300 << 20)) "$WORK/data" "$mnt/vol" || fail "vol differs"
cmp "$mnt/vol" "$mnt/copy" || fail "copy differs"

log "remount: the data is on the device"
umount_fs "$mnt"
fsck_clean "$dev"
mount_fs "$dev" "$mnt"
echo 3 >/proc/sys/vm/drop_caches
cmp -n $((300 << 20)) "$WORK/data" "$mnt/vol" || fail "vol differs after a remount"
cmp -n $((1000 * 4096)) "$WORK/data" "$mnt/vol" --ignore-initial=0:$((400 << 20)) ||
  fail "the 4 KiB writes at 400 MiB differ after a remount"

log "shrink and rm give the chunks back, and what comes back reads as zeros"
# cp cloned vol's chunks, so the copy shares them: the shrink frees nothing yet, the rm frees the
# two chunks that only vol still held, and the regrow takes two again. df (chunk_free) also
# counts the share reserve as used: one chunk per chunk the two thick files share, 3 at first.
pool_free() { "$VLUNCTL" info "$mnt" | awk '$1 == "free_chunks" {print $2}'; }
free_before=$(chunk_free "$mnt")
pool_before=$(pool_free)
truncate -s 100M "$mnt/copy"
expect_eq "$(pool_free)" "$pool_before" "chunks free after shrinking a clone"
expect_eq "$(chunk_free "$mnt")" $((free_before + 2)) "df after shrinking a clone (two shares, and their reserve, gone)"
rm "$mnt/vol"
expect_eq "$(pool_free)" $((pool_before + 2)) "chunks free after rm"
expect_eq "$(chunk_free "$mnt")" $((free_before + 5)) "df after rm (two chunks freed, no share left)"
truncate -s 600M "$mnt/copy"
expect_eq "$(pool_free)" "$pool_before" "chunks free after the regrow"
expect_eq "$(chunk_free "$mnt")" $((free_before + 3)) "df after the regrow"
expect_eq "$(cmp -n $((100 << 20)) "$WORK/data" "$mnt/copy" && echo same)" same "the kept 100 MiB of the copy"
zeros=$(tail -c +$(((100 << 20) + 1)) "$mnt/copy" | tr -d '\0' | wc -c)
expect_eq "$zeros" 0 "non-zero bytes in the regrown range"
umount_fs "$mnt"
fsck_clean "$dev"
