#!/usr/bin/env bash
# Permissions are enforced (default_permissions): a non-root user cannot read or write others'
# vLUNs, and other users cannot reach the mount at all without allow_other.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 4G
mount_fs "$img" "$mnt" -o allow_other
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

truncate -s 1M "$mnt/private"
chmod 600 "$mnt/private"
echo public > "$mnt/public"
chmod 644 "$mnt/public"
mkdir "$mnt/shared" && chmod 1777 "$mnt/shared"
expect_fail "Permission denied" as_nobody cat "$mnt/private"
expect_fail "Permission denied" as_nobody dd if=/dev/zero of="$mnt/private" bs=4k count=1 conv=notrunc status=none
expect_fail "Permission denied" as_nobody truncate -s 2M "$mnt/private"
expect_fail "Permission denied" as_nobody sh -c "echo x >> '$mnt/public'"
expect_fail "Operation not permitted" as_nobody chmod 666 "$mnt/public"
expect_fail "Permission denied" as_nobody touch "$mnt/newfile"
expect_eq "$(as_nobody cat "$mnt/public")" public "others may read a 644 file"
as_nobody truncate -s 1M "$mnt/shared/mine"
expect_eq "$(stat -c %U "$mnt/shared/mine")" nobody "a new vLUN belongs to its creator"
as_nobody sh -c "echo hi > '$mnt/shared/mine'"
umount_fs "$mnt"

log "without allow_other, other users cannot reach the mount"
mount_fs "$img" "$mnt"
expect_fail "Permission denied" as_nobody ls "$mnt"
umount_fs "$mnt"
fsck_clean "$img"
