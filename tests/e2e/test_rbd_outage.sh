#!/usr/bin/env bash
# The cluster goes away under a mounted pool: its only OSD is stopped for some seconds and started
# again. Writers block meanwhile (or fail with EIO; never a false success), nothing acknowledged
# durable before or during the outage is lost, and the pool is fsck-clean afterwards.
source "$(dirname "$0")/lib.sh" "$1"
source "$(dirname "$0")/../rbd-cluster/lib.sh"

rbd_formatted_pool
MNT=$WORK/mnt
mount_fs "$POOL" "$MNT" -o "$CEPH_OPTS"
dd if=/dev/urandom of="$WORK/before" bs=1M count=5 status=none
dd if=/dev/urandom of="$WORK/during" bs=1M count=3 status=none
cp "$WORK/before" "$MNT/before" && sync "$MNT/before"

log "the OSD stops; a writer starts"
rbd_osd_stop
( dd if="$WORK/during" of="$MNT/during" bs=1M conv=fsync status=none 2>"$WORK/writer.err"; echo $? > "$WORK/writer.rc" ) &
WRITER=$!
sleep 5
if [ -e "$WORK/writer.rc" ]; then
  [ "$(cat "$WORK/writer.rc")" != 0 ] || fail "a write was acknowledged durable while the only OSD was down"
  grep -q "Input/output error" "$WORK/writer.err" || fail "the writer failed, not with EIO: $(cat "$WORK/writer.err")"
  log "the writer failed with EIO during the outage"
else
  log "the writer is blocked during the outage"
fi

log "the OSD comes back"
rbd_osd_start
for _ in $(seq 600); do [ -e "$WORK/writer.rc" ] && break; sleep 0.1; done
[ -e "$WORK/writer.rc" ] || fail "the writer still blocks 60 s after the OSD came back"
wait "$WRITER" 2>/dev/null || true
if [ "$(cat "$WORK/writer.rc")" = 0 ]; then
  cmp "$WORK/during" "$MNT/during" || fail "the write acknowledged after the outage differs"
  DURING_DURABLE=1
else
  DURING_DURABLE=0
fi
cmp "$WORK/before" "$MNT/before" || fail "the file made durable before the outage differs"
echo after > "$MNT/after" && sync "$MNT/after" || fail "no write after the OSD came back"

umount_fs "$MNT"
rbd_wait_unlocked "$POOL"
out=$("$VLUNCTL" fsck -o "$CEPH_OPTS" "$POOL" 2>&1) || fail "fsck after the outage: $out"
mount_fs "$POOL" "$MNT" -o "$CEPH_OPTS"
cmp "$WORK/before" "$MNT/before" || fail "before differs after a remount"
[ "$DURING_DURABLE" = 0 ] || cmp "$WORK/during" "$MNT/during" || fail "during differs after a remount"
expect_eq "$(cat "$MNT/after")" after "the file written after the outage"
umount_fs "$MNT"
