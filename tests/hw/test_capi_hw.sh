#!/usr/bin/env bash
# On a POWER machine with a CAPI flash LUN in superpipe mode (docs/hardware.md):
#   VLUNFS_CAPI_DEVICE=/dev/sgN ctest -L capi-hw
# formats the LUN (everything on it is lost), mounts it on the hardware backend, writes, remounts,
# checks. Skipped (exit 77) when VLUNFS_CAPI_DEVICE is unset. Never run in CI: no CAPI hardware.
if [ -z "${VLUNFS_CAPI_DEVICE:-}" ]; then
  echo "VLUNFS_CAPI_DEVICE is not set: no CAPI flash LUN to test on; skipped"
  exit 77
fi
source "$(dirname "$0")/../e2e/lib.sh" "$1"
dev=$VLUNFS_CAPI_DEVICE
mnt=$WORK/mnt
sha() { sha256sum < "$1" | cut -d' ' -f1; }

log "mkfs through the cxlflash ioctls on $dev"
"$MKFS" --backend capi --force "$dev"
fsck_clean "$dev"
mount_fs "$dev" "$mnt" --backend=capi
truncate -s 1G "$mnt/vol"
head -c $((64 << 20)) /dev/urandom > "$WORK/data"
dd if="$WORK/data" of="$mnt/vol" bs=1M conv=notrunc,fsync status=none
cp "$mnt/vol" "$mnt/copy"
sum=$(sha "$mnt/vol")
umount_fs "$mnt"
fsck_clean "$dev"
mount_fs "$dev" "$mnt" --backend=capi
expect_eq "$(sha "$mnt/vol")" "$sum" "vol after remount on the hardware"
expect_eq "$(sha "$mnt/copy")" "$sum" "copy after remount on the hardware"
umount_fs "$mnt"
fsck_clean "$dev"
