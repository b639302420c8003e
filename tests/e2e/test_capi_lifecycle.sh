#!/usr/bin/env bash
# The whole filesystem on the CAPI hardware backend (src/afu/capi/), under the simulated kernel:
# VLUNFS_CAPI_SIMULATED_KERNEL makes the programs' kernel serve /dev/sg-vlunfs-sim as a CAPI
# flash LUN over an image file (the DK_CXLFLASH ioctls answered by the vLUN driver, the MMIO window
# by the software AFU's registers). mkfs, mount (foreground and daemonized), truncate, dd, cp
# (shared chunks), rm, remount, kill -9 with fsynced data, fsck: all through ATTACH/USER_DIRECT.
source "$(dirname "$0")/lib.sh" "$1"

lun=$WORK/lun.img
export VLUNFS_CAPI_SIMULATED_KERNEL=$lun
dev=/dev/sg-vlunfs-sim
mnt=$WORK/mnt
sha() { sha256sum < "$1" | cut -d' ' -f1; }
# Waits until no process holds the LUN's backing image (the daemon has let go of the LUN).
wait_released() {
  for _ in $(seq 100); do fuser -s "$lun" 2>/dev/null || return 0; sleep 0.1; done
  fail "the daemon still holds $lun"
}
truncate -s 96M "$lun"

log "mkfs.vlunfs detects the CAPI LUN (ATTACH answers) and formats it through the backend"
"$MKFS" --chunk-shift 8 "$dev" > "$WORK/mkfs.out"
grep -q "^$dev: vlunfs format" "$WORK/mkfs.out" || fail "mkfs summary: $(cat "$WORK/mkfs.out")"
expect_fail "already holds a vlunfs filesystem" "$MKFS" --chunk-shift 8 "$dev"
expect_fail "its size is its own" "$MKFS" --size 1G "$dev"
log "--backend=sim does not reach the simulated LUN (the path is no file): capi really served it"
expect_fail "does not exist" "$MKFS" --backend sim --chunk-shift 8 "$dev"
mkdir -p "$mnt"
expect_fail "No such file" "$VLUNFS" -f --backend=sim "$dev" "$mnt"
fsck_clean "$dev"

log "mount on the hardware backend; truncate, dd, cp, rm"
mount_fs "$dev" "$mnt"
truncate -s 5M "$mnt/vol"
expect_eq "$(stat -c %s "$mnt/vol")" $((5 << 20)) "truncated size"
head -c $((3 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$mnt/vol" bs=64k conv=notrunc,fsync status=none
cp "$mnt/vol" "$mnt/copy"
expect_eq "$(sha "$mnt/copy")" "$(sha "$mnt/vol")" "cp of a vLUN"
printf 'X' | dd of="$mnt/copy" bs=1 seek=10 conv=notrunc status=none
[ "$(sha "$mnt/copy")" != "$(sha "$mnt/vol")" ] || fail "a write to the copy reached the original"
head -c $((2 << 20)) /dev/urandom > "$mnt/gone"
free_with=$(chunk_free "$mnt")
rm "$mnt/gone"
[ "$(chunk_free "$mnt")" -gt "$free_with" ] || fail "rm gave no chunk back"
vol_sum=$(sha "$mnt/vol")
copy_sum=$(sha "$mnt/copy")
umount_fs "$mnt"
wait_released
fsck_clean "$dev"

log "remount: the data is read back through a new context"
mount_fs "$dev" "$mnt"
expect_eq "$(sha "$mnt/vol")" "$vol_sum" "vol after remount"
expect_eq "$(sha "$mnt/copy")" "$copy_sum" "copy after remount"

log "kill -9 of the daemon: fsynced data intact, fsck clean"
head -c $((1 << 20)) /dev/urandom > "$WORK/synced"
dd if="$WORK/synced" of="$mnt/synced" bs=64k conv=fsync status=none
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
umount -l "$mnt" 2>/dev/null || true
wait_released
fsck_clean "$dev"
mount_fs "$dev" "$mnt"
expect_eq "$(sha "$mnt/synced")" "$(sha "$WORK/synced")" "fsynced file after kill -9"
expect_eq "$(sha "$mnt/vol")" "$vol_sum" "vol after kill -9"
umount_fs "$mnt"
wait_released

log "daemonized mount: the forked daemon attaches a context of its own on the LUN"
"$VLUNFS" "$dev" "$mnt" 2>>"$WORK/daemon.log"
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || fail "daemonized mount did not appear"
DAEMON_PIDS+=($(fuser "$lun" 2>/dev/null))
head -c $((1 << 20)) /dev/urandom > "$WORK/daemonized"
cp "$WORK/daemonized" "$mnt/daemonized"
sync
expect_eq "$(sha "$mnt/daemonized")" "$(sha "$WORK/daemonized")" "data through the daemon's own context"
umount "$mnt"
wait_released
fsck_clean "$dev"
mount_fs "$dev" "$mnt" -o ro
expect_eq "$(sha "$mnt/daemonized")" "$(sha "$WORK/daemonized")" "daemonized data after remount (read-only context)"
umount_fs "$mnt"
