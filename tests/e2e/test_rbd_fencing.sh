#!/usr/bin/env bash
# Fencing on an RBD pool (docs/rbd.md "Fencing"): while one daemon has the pool mounted, a second
# daemon (another process, its own Ceph user) is refused and told who holds it; after the first
# is killed (kill -9), vlunctl takeover breaks its lock and the second mounts, replays the journal
# and finds every fsync'ed byte.
source "$(dirname "$0")/lib.sh" "$1"
source "$(dirname "$0")/../rbd-cluster/lib.sh"

rbd_formatted_pool
rbd_user vlunfs-second
SECOND_OPTS=$USER_OPTS

log "the first daemon mounts and writes; fsync'ed files"
mount_fs "$POOL" "$WORK/first" -o "$CEPH_OPTS"
FIRST_PID=$MOUNT_PID
dd if=/dev/urandom of="$WORK/a" bs=1M count=9 status=none
dd if=/dev/urandom of="$WORK/b" bs=4k count=33 status=none
cp "$WORK/a" "$WORK/first/a" && sync "$WORK/first/a"
mkdir "$WORK/first/dir"
dd if="$WORK/b" of="$WORK/first/dir/b" bs=4k conv=fsync status=none
truncate -s 20M "$WORK/first/grown" && sync "$WORK/first/grown"

log "a second daemon, as another Ceph user, is refused and told who holds the pool"
mkdir -p "$WORK/second"
expect_fail "is in use: its lock is held by client." "$VLUNFS" -f "$POOL" "$WORK/second" -o "$SECOND_OPTS"
expect_fail "vlunctl takeover $POOL" "$VLUNFS" -f "$POOL" "$WORK/second" -o "$SECOND_OPTS"
mountpoint -q "$WORK/second" && fail "the second daemon mounted"

log "kill -9 the first daemon; vlunctl takeover as the second user"
kill -9 "$FIRST_PID"
wait "$FIRST_PID" 2>/dev/null || true
umount -l "$WORK/first" 2>/dev/null || true
out=$("$VLUNCTL" takeover -o "$SECOND_OPTS" "$POOL") || fail "takeover: $out"
case "$out" in *"broke the lock of client."*) ;; *) fail "takeover said: $out" ;; esac
start=$(date +%s%N)
mount_fs "$POOL" "$WORK/second" -o "$SECOND_OPTS"
log "mounted after the takeover in $(( ($(date +%s%N) - start) / 1000000 )) ms"
cmp "$WORK/a" "$WORK/second/a" || fail "a differs after the takeover"
cmp "$WORK/b" "$WORK/second/dir/b" || fail "dir/b differs after the takeover"
expect_eq "$(stat -c %s "$WORK/second/grown")" $((20 << 20)) "grown's size after the takeover"
echo more > "$WORK/second/new" && sync "$WORK/second/new"
umount_fs "$WORK/second"
rbd_wait_unlocked "$POOL"
fsck_out=$("$VLUNCTL" fsck -o "$CEPH_OPTS" "$POOL" 2>&1) || fail "fsck after the takeover: $fsck_out"
expect_eq "$("$VLUNCTL" takeover -o "$CEPH_OPTS" "$POOL")" "$POOL: nobody held its lock; mount it" "takeover of a free pool"
