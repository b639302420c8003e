#!/usr/bin/env bash
# vlunfs -o kernel_vluns (issue 13) under the simulated kernel: a scratch mount of the CAPI LUN in
# which every file is a kernel vLUN (USER_VIRTUAL, VLUN_RESIZE, RELEASE; VLUN_CLONE in the forked
# daemon). truncate, dd and cmp, cp, rm giving chunks back in statfs, ENOSPC past the LUN, nothing
# kept after unmount, flat (mkdir refused), and the refusal of anything that is not a CAPI LUN.
source "$(dirname "$0")/lib.sh" "$1"

lun=$WORK/lun.img
dev=/dev/sg-vlunfs-sim
mnt=$WORK/mnt
mkdir -p "$mnt"
chunk=$((256 << 20))  # a kernel vLUN's chunk: 2^16 blocks of 4 KiB (spec §2)
truncate -s $((4 * chunk)) "$lun"  # sparse: four chunks
# Waits until no process holds the LUN's backing image (the daemon has let go of the LUN).
wait_released() {
  for _ in $(seq 100); do fuser -s "$lun" 2>/dev/null || return 0; sleep 0.1; done
  fail "the daemon still holds $lun"
}
total_chunks() { stat -f -c %b "$1"; }

log "refused without a CAPI LUN: an image file (no simulated kernel), and --backend=sim"
truncate -s 64M "$WORK/plain.img"
expect_fail "-o kernel_vluns needs a CAPI flash LUN" "$VLUNFS" -f -o kernel_vluns "$WORK/plain.img" "$mnt"
if mountpoint -q "$mnt"; then fail "a refused mount is mounted"; fi
export VLUNFS_CAPI_SIMULATED_KERNEL=$lun
expect_fail "was given --backend=sim" "$VLUNFS" -f --backend=sim -o kernel_vluns "$dev" "$mnt"
"$VLUNFS" --help | grep -q "nothing is kept" || fail "--help does not say that nothing is kept after unmount"

log "mount: an empty flat directory over the whole LUN, no mkfs"
mount_fs "$dev" "$mnt" -o kernel_vluns
expect_eq "$(ls -A "$mnt" | wc -l)" 0 "entries of a new scratch mount"
expect_eq "$(total_chunks "$mnt")" 4 "statfs blocks (chunks of the LUN)"
expect_eq "$(stat -f -c %S "$mnt")" "$chunk" "statfs block size (a chunk)"
expect_eq "$(chunk_free "$mnt")" 4 "free chunks of an empty mount"

log "truncate -s provisions a vLUN (VLUN_RESIZE); dd of random data reads back"
truncate -s 5M "$mnt/vol"
expect_eq "$(stat -c %s "$mnt/vol")" $((5 << 20)) "truncated size"
expect_eq "$(chunk_free "$mnt")" 3 "free chunks with a 5M file"
cmp -n $((5 << 20)) "$mnt/vol" /dev/zero || fail "a new vLUN does not read as zeros"
head -c $((3 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$mnt/vol" bs=64k seek=3 conv=notrunc,fsync status=none
cmp -i 0:$((3 * 65536)) -n $((3 << 20)) "$WORK/data" "$mnt/vol" || fail "dd data does not read back"
cmp -n $((3 * 65536)) "$mnt/vol" /dev/zero || fail "the bytes before the dd are not zeros"
expect_eq "$(stat -c %s "$mnt/vol")" $((5 << 20)) "size after a dd inside the file"

log "cp, mv, rm: rm gives the chunk back"
cp "$mnt/vol" "$mnt/copy"
cmp "$mnt/vol" "$mnt/copy" || fail "cp of a kernel vLUN differs"
expect_eq "$(chunk_free "$mnt")" 2 "free chunks with two files"
mv "$mnt/copy" "$mnt/moved"
[ ! -e "$mnt/copy" ] && cmp "$mnt/vol" "$mnt/moved" || fail "mv within the root"
rm "$mnt/moved"
expect_eq "$(chunk_free "$mnt")" 3 "free chunks after rm"
expect_eq "$(ls "$mnt")" "vol" "entries after rm"

log "flat: mkdir and mknod of a fifo are refused"
expect_fail "Operation not permitted" mkdir "$mnt/dir"
expect_fail "Operation not permitted" mkfifo "$mnt/fifo"
grep -q "flat directory" "$WORK/daemon.log" || fail "no log line says why mkdir was refused"

log "a write past the LUN's capacity is ENOSPC and gives back what it took"
expect_fail "No space left on device" dd if=/dev/zero of="$mnt/big" bs=4k count=1 seek=$((4 * chunk / 4096)) \
  conv=notrunc status=none
expect_eq "$(chunk_free "$mnt")" 3 "free chunks after the ENOSPC write"
expect_fail "No space left on device" truncate -s $((4 * chunk)) "$mnt/big"
truncate -s $((3 * chunk)) "$mnt/big"
expect_eq "$(chunk_free "$mnt")" 0 "free chunks with the LUN full"
cmp "$WORK/data" "$mnt/vol" -i 0:$((3 * 65536)) -n $((3 << 20)) || fail "vol changed under ENOSPC"
rm "$mnt/big"

log "unmount and mount again: nothing kept"
umount_fs "$mnt"
wait_released
mount_fs "$dev" "$mnt" -o kernel_vluns
expect_eq "$(ls -A "$mnt" | wc -l)" 0 "entries after a remount"
expect_eq "$(chunk_free "$mnt")" 4 "free chunks after a remount"
umount_fs "$mnt"
wait_released

log "daemonized: the forked daemon's own context (VLUN_CLONE) serves the files"
"$VLUNFS" -o kernel_vluns "$dev" "$mnt" 2>>"$WORK/daemon.log"
mountpoint -q "$mnt" || fail "daemonized mount did not appear"
DAEMON_PIDS+=($(fuser "$lun" 2>/dev/null))
head -c $((1 << 20)) /dev/urandom > "$WORK/daemonized"
cp "$WORK/daemonized" "$mnt/daemonized"
sync
cmp "$WORK/daemonized" "$mnt/daemonized" || fail "data through the daemon's own context"
expect_eq "$(chunk_free "$mnt")" 3 "free chunks in the daemon"
umount "$mnt"
wait_released
