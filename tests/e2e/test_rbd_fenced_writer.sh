#!/usr/bin/env bash
# A daemon that is still running when another takes its pool over (-o takeover) cannot change a
# byte: the cluster has blocklisted it, its writes and fsyncs fail with EIO, it logs why, and
# the pool stays as the new holder has it, fsck-clean.
source "$(dirname "$0")/lib.sh" "$1"
source "$(dirname "$0")/../rbd-cluster/lib.sh"

rbd_formatted_pool
rbd_user vlunfs-taker
SECOND_OPTS=$USER_OPTS

mount_fs "$POOL" "$WORK/old" -o "$CEPH_OPTS"
OLD_PID=$MOUNT_PID
dd if=/dev/urandom of="$WORK/data" bs=1M count=6 status=none
cp "$WORK/data" "$WORK/old/file" && sync "$WORK/old/file"
want=$(sha256sum < "$WORK/data")

log "the second daemon takes the pool over while the first still runs"
mount_fs "$POOL" "$WORK/new" -o "$SECOND_OPTS,takeover"
NEW_PID=$MOUNT_PID
kill -0 "$OLD_PID" || fail "the old daemon died at the takeover"

log "the old daemon's writes fail with EIO"
if out=$(dd if=/dev/zero of="$WORK/old/file" bs=1M count=2 conv=notrunc,fsync status=none 2>&1); then
  fail "an overwrite through the fenced daemon was acknowledged durable"
fi
case "$out" in *"Input/output error"*) ;; *) fail "the fenced overwrite failed with: $out" ;; esac
if dd if=/dev/zero of="$WORK/old/other" bs=64k count=1 conv=fsync status=none 2>/dev/null; then
  fail "a new file through the fenced daemon was acknowledged durable"
fi
grep -q "took this image's lock over" "$WORK/daemon.log" || { cat "$WORK/daemon.log" >&2; fail "no log line of the fencing"; }

log "the new holder sees the pool unchanged, and writes it"
expect_eq "$(sha256sum < "$WORK/new/file")" "$want" "the file through the new holder"
[ ! -e "$WORK/new/other" ] || fail "the fenced daemon's new file reached the pool"
echo after > "$WORK/new/after" && sync "$WORK/new/after"

log "the old daemon unmounts without harm; the pool is fsck-clean"
umount "$WORK/old" 2>/dev/null || umount -l "$WORK/old"
for _ in $(seq 100); do kill -0 "$OLD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$OLD_PID" 2>/dev/null && fail "the fenced daemon did not exit after its unmount"
expect_eq "$(sha256sum < "$WORK/new/file")" "$want" "the file after the old daemon's unmount"
MOUNT_PID=$NEW_PID
umount_fs "$WORK/new"
rbd_wait_unlocked "$POOL"
out=$("$VLUNCTL" fsck -o "$CEPH_OPTS" "$POOL" 2>&1) || fail "fsck after the fenced daemon: $out"
mount_fs "$POOL" "$WORK/again" -o "$CEPH_OPTS"
expect_eq "$(sha256sum < "$WORK/again/file")" "$want" "the file after a remount"
expect_eq "$(cat "$WORK/again/after")" after "the new holder's file after a remount"
umount_fs "$WORK/again"
