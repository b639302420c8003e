#!/usr/bin/env bash
# A container volume: mkfs.ext4 inside a 1 GiB vLUN, loop-mounted, files written, e2fsck clean,
# vlunfs remounted and the ext4 mounted again with the data intact.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
vol=$WORK/ext4
make_image "$img" 16G
mount_fs "$img" "$mnt"

truncate -s 1G "$mnt/container-vol"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$mnt/container-vol"
mkdir -p "$vol"
mount -o loop "$mnt/container-vol" "$vol"
LOOP_MOUNTS+=("$vol")
mkdir -p "$vol/app/data"
dd if=/dev/urandom of="$vol/app/data/blob" bs=1M count=64 status=none
for i in $(seq 200); do echo "file $i" > "$vol/app/small-$i.txt"; done
sum=$(cd "$vol" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)
umount "$vol"
LOOP_MOUNTS=()
e2fsck -fn "$mnt/container-vol" >/dev/null || fail "e2fsck found errors in the ext4 inside the vLUN"

log "remount vlunfs, then the ext4"
umount_fs "$mnt"
fsck_clean "$img"
mount_fs "$img" "$mnt"
e2fsck -fn "$mnt/container-vol" >/dev/null || fail "e2fsck after remount"
mount -o loop "$mnt/container-vol" "$vol"
LOOP_MOUNTS+=("$vol")
expect_eq "$(cd "$vol" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)" "$sum" "ext4 contents after remount"
umount "$vol"
LOOP_MOUNTS=()
umount_fs "$mnt"
fsck_clean "$img"
