#!/usr/bin/env bash
# A flash pool on a Ceph RBD image, through its whole life: mkfs creates the image (and refuses an
# existing one without --force), the daemon mounts it in the background (mount.vlunfs, as mount(8)
# and fstab run it), vLUNs are made, written, copied, cloned and removed, the pool is remounted and
# every byte is as written, fsck is clean; removing a written vLUN gives its objects back to Ceph.
source "$(dirname "$0")/lib.sh" "$1"
source "$(dirname "$0")/../rbd-cluster/lib.sh"

POOL=$(rbd_image pool)
MNT=$WORK/mnt
mkdir -p "$MNT"

log "mkfs.vlunfs creates $POOL"
out=$("$MKFS" --size 2G --chunk-shift 10 -o "$CEPH_OPTS" "$POOL") || fail "mkfs: $out"
case "$out" in *"chunk 4.0 MiB"*) ;; *) fail "mkfs summary: $out" ;; esac
expect_fail "already exists and holds a vlunfs filesystem; use --force" "$MKFS" --size 2G -o "$CEPH_OPTS" "$POOL"
"$MKFS" -q --force --chunk-shift 10 -o "$CEPH_OPTS" "$POOL" || fail "mkfs --force of an existing image"
expect_eq "$(rbd -c "$CEPH_CONF" info "${POOL#rbd:}" | grep -c exclusive-lock)" 1 "the image's exclusive-lock feature"
expect_fail "No such file or directory (create it with mkfs.vlunfs --size SIZE" "$MKFS" -o "$CEPH_OPTS" "rbd:$RBD_POOL/never-made-$$"

log "mount through mount.vlunfs (the daemon forks before it connects to the cluster)"
"$BUILD/mount.vlunfs" "$POOL" "$MNT" -o "$CEPH_OPTS,_netdev" || fail "mount.vlunfs $POOL"
mountpoint -q "$MNT" || fail "not mounted"
expect_eq "$(findmnt -n -o SOURCE --mountpoint "$MNT")" "$POOL" "the mount's source"
expect_fail "is in use: its lock is held by client." "$VLUNCTL" fsck -n -o "$CEPH_OPTS" "$POOL"

log "truncate, dd, cp, clone, rm"
truncate -s 64M "$MNT/vol1"
dd if=/dev/urandom of="$WORK/data" bs=1M count=24 status=none
dd if="$WORK/data" of="$MNT/vol1" bs=1M conv=notrunc,fsync status=none
cp "$MNT/vol1" "$MNT/copy"
"$VLUNCTL" clone "$MNT/vol1" "$MNT/clone" >/dev/null || fail "vlunctl clone"
dd if=/dev/urandom of="$MNT/scratch" bs=1M count=32 conv=fsync status=none
sync "$MNT/copy" "$MNT/clone"
want=$(head -c 24M "$WORK/data" | sha256sum | cut -d' ' -f1)
expect_eq "$(head -c 24M "$MNT/copy" | sha256sum | cut -d' ' -f1)" "$want" "the copy"
expect_eq "$(head -c 24M "$MNT/clone" | sha256sum | cut -d' ' -f1)" "$want" "the clone"

log "rm of a written vLUN gives its objects back to Ceph (rbd du)"
before=$(rbd_used "$POOL")
rm "$MNT/scratch"
"$VLUNCTL" sync "$MNT" >/dev/null
after=$(rbd_used "$POOL")
log "rbd du: $before bytes before rm, $after after"
# The data area starts 1 MiB aligned, so a chunk's first and last 4 MiB objects may be shared
# with its neighbours: those are zeroed, the others removed (docs/rbd.md).
[ $((before - after)) -ge $((24 << 20)) ] || fail "rbd du shrank by $((before - after)) bytes after rm of 32 MiB written"

log "unmount, remount in the foreground, bytes exact"
umount "$MNT" || fail "umount"
rbd_wait_unlocked "$POOL"
mount_fs "$POOL" "$MNT" -o "$CEPH_OPTS"
for f in vol1 copy clone; do
  expect_eq "$(head -c 24M "$MNT/$f" | sha256sum | cut -d' ' -f1)" "$want" "$f after the remount"
  expect_eq "$(stat -c %s "$MNT/$f")" $((64 << 20)) "$f's size after the remount"
done
[ ! -e "$MNT/scratch" ] || fail "the removed vLUN is back"
rm "$MNT/copy"
umount_fs "$MNT"
rbd_wait_unlocked "$POOL"

log "fsck clean, vlunctl info reads the pool"
out=$("$VLUNCTL" fsck -o "$CEPH_OPTS" "$POOL" 2>&1) || fail "fsck not clean: $out"
case "$out" in *": clean"*) ;; *) fail "fsck said: $out" ;; esac
out=$("$VLUNCTL" info -rn --options "$CEPH_OPTS" "$POOL") || fail "vlunctl info: $out"
grep -qx "files 2" <<<"$out" || fail "vlunctl info: $out"
