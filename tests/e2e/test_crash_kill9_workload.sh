#!/usr/bin/env bash
# kill -9 of the daemon at random moments of a mixed workload (creates, writes, fsyncs, truncates,
# renames, hard links, unlinks, mkdir/rmdir) on a real mount. After each kill: fsck is clean, the
# image remounts, and every directory a workload ever ran in holds the namespace after its last
# step that returned (or after the one in flight) with every fsynced, unchanged file exact
# (tests/crash/crash_workload.cc keeps the record outside the mount).
#
# Cycles: VLUNFS_CRASH_ITERATIONS / 4 (default 30); e.g. VLUNFS_CRASH_ITERATIONS=2000 for 500.
source "$(dirname "$0")/lib.sh" "$1"

WORKLOAD="$BUILD/vlunfs-crash-workload"
[ -x "$WORKLOAD" ] || fail "$WORKLOAD not built"
cycles=$(( ${VLUNFS_CRASH_ITERATIONS:-120} / 4 ))
[ "$cycles" -ge 1 ] || cycles=1

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 2G --chunk-shift 4   # 64 KiB chunks (simulator only): many chunk operations
mount_fs "$img" "$mnt"

for ((i = 1; i <= cycles; i++)); do
  "$WORKLOAD" run "$mnt/c$i" "$WORK/log.$i" "$i" 2>>"$WORK/workload.err" &
  workload=$!
  # A random moment: 50 to 800 ms into the work.
  sleep "0.$(printf '%03d' $(( 50 + RANDOM % 750 )))"
  kill -9 "$MOUNT_PID"
  wait "$MOUNT_PID" 2>/dev/null || true
  wait "$workload" 2>/dev/null || true
  umount -l "$mnt" 2>/dev/null || true

  out=$("$VLUNCTL" fsck "$img" 2>&1) || { echo "$out" >&2; fail "cycle $i: fsck after kill -9 is not clean"; }
  mount_fs "$img" "$mnt"
  for ((j = 1; j <= i; j++)); do
    result=$("$WORKLOAD" verify "$mnt/c$j" "$WORK/log.$j" 2>&1) || { echo "$result" >&2; fail "cycle $i: verify of c$j"; }
    [ "$j" -eq "$i" ] && log "cycle $i: $result"
  done
done
steps=$(cat "$WORK"/log.* | grep -c '^E$' || true)
log "$cycles kill -9 crash points, $steps workload steps, every check passed"

umount_fs "$mnt"
fsck_clean "$img"
