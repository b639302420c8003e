#!/usr/bin/env bash
# Once an unmount returns, the image is usable: `umount MNT && vlunctl fsck IMG` is clean every
# time, by umount(8) with its helper (umount.fuse.vlunfs, which waits for the daemon), by umount
# without helpers (umount -i) and by fusermount3 -u (fsck then waits for the releasing daemon).
# VLUNFS_UNMOUNT_CYCLES cycles of each way: 100 by default (about 50 s on 2 cores), 200 by hand.
source "$(dirname "$0")/lib.sh" "$1"

cycles=${VLUNFS_UNMOUNT_CYCLES:-100}
img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 1G --chunk-shift 4  # 64 KiB chunks: a small image, quick to check
mkdir -p "$mnt"

helper=/sbin/umount.fuse.vlunfs
if [ ! -e "$helper" ]; then
  ln -s "$BUILD/umount.fuse.vlunfs" "$helper"
  CLEANUP_HOOKS+=("rm -f $helper")
fi

# util-linux's table of mounts it must treat specially: the daemon's entry for $mnt (so that umount
# runs the helper) must not outlive the mount, whichever way it was unmounted.
no_stale_utab_entry() {
  if [ -f /run/mount/utab ] && grep -q "TARGET=$mnt " /run/mount/utab; then
    fail "$1: /run/mount/utab still has an entry for $mnt"
  fi
}

# One cycle: mount (as a user does, the daemon in the background), check what the last cycle
# wrote, change something, unmount with UNMOUNT..., fsck at once.
cycle() {
  local i=$1
  shift
  "$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log" || fail "cycle $i: mount"
  if [ -e "$mnt/last" ]; then
    expect_eq "$(cat "$mnt/last")" "$last" "cycle $i: what the previous cycle wrote"
  fi
  last="$*-$i"
  echo "$last" > "$mnt/last"
  truncate -s $(((i % 7) * 65536 + 1000)) "$mnt/vol"
  "$@" "$mnt" || fail "cycle $i: $* failed"
  "$VLUNCTL" fsck "$img" >"$WORK/fsck.out" 2>"$WORK/fsck.err" || {
    cat "$WORK/fsck.out" "$WORK/fsck.err" >&2
    fail "cycle $i: fsck right after '$*' not clean"
  }
}

last=""
start=$SECONDS
log "$cycles cycles of umount (with umount.fuse.vlunfs) && fsck"
for i in $(seq "$cycles"); do
  cycle "$i" umount
  # The helper waited: the image was released before umount returned, fsck had nothing to wait for.
  if grep -q waiting "$WORK/fsck.err"; then cat "$WORK/fsck.err" >&2; fail "cycle $i: fsck had to wait after umount returned"; fi
  flock -n "$img" true || fail "cycle $i: the image is still locked after umount returned"
done
no_stale_utab_entry "$cycles cycles"
log "  $((SECONDS - start)) s"

start=$SECONDS
log "$cycles cycles of umount -i (no helper) && fsck"
for i in $(seq "$cycles"); do cycle "$i" umount -i; done
no_stale_utab_entry "$cycles cycles"
log "  $((SECONDS - start)) s"

start=$SECONDS
log "$cycles cycles of fusermount3 -u && fsck"
for i in $(seq "$cycles"); do cycle "$i" fusermount3 -u; done
no_stale_utab_entry "$cycles cycles"
log "  $((SECONDS - start)) s"

log "vlunctl info right after fusermount3 -u"
for i in $(seq 20); do
  "$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log"
  fusermount3 -u "$mnt"
  "$VLUNCTL" info "$img" >/dev/null 2>"$WORK/info.err" || { cat "$WORK/info.err" >&2; fail "info $i after fusermount3 -u"; }
done

log "a mount right after an unmount"
for i in $(seq 20); do
  "$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log"
  umount -i "$mnt"
  "$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log" || fail "mount $i right after umount -i"
  umount "$mnt"
done

log "a daemon that does not let go is waited for 10 s; another program holding the image is refused at once"
# flock(1) copied under the daemon's name: a process called vlunfs that holds the image.
cp "$(command -v flock)" "$WORK/vlunfs"
"$WORK/vlunfs" -o -x "$img" sleep 12 &  # -o: the lock stays with flock, not with its sleep
holder=$!
CLEANUP_HOOKS+=("kill $holder 2>/dev/null")
for _ in $(seq 100); do flock -n "$img" true 2>/dev/null || break; sleep 0.05; done
begin=$SECONDS
expect_fail "did not let go within 10 s" "$VLUNCTL" fsck "$img"
[ $((SECONDS - begin)) -ge 9 ] || fail "fsck gave up on a releasing daemon after $((SECONDS - begin)) s"
[ $((SECONDS - begin)) -le 15 ] || fail "fsck waited more than its 10 s"
kill "$holder"
wait "$holder" 2>/dev/null || true
exec {hold}<"$img"
flock -x "$hold"
begin=$SECONDS
expect_fail "another program holds it" "$VLUNCTL" fsck "$img"
expect_fail "another program holds it" "$VLUNCTL" info "$img"
[ $((SECONDS - begin)) -le 2 ] || fail "fsck waited for a lock that no daemon holds"
exec {hold}<&-
fsck_clean "$img"

log "a mounted image is refused at once, naming its mountpoint"
"$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log"
mkdir -p "$WORK/mnt2"
begin=$SECONDS
expect_fail "mounted on $mnt" "$VLUNFS" -f "$img" "$WORK/mnt2"
expect_fail "it is mounted on $mnt" "$VLUNCTL" fsck "$img"
expect_fail "use 'vlunctl info $mnt'" "$VLUNCTL" info "$img"
[ $((SECONDS - begin)) -le 2 ] || fail "refusing a mounted image took $((SECONDS - begin)) s"
umount "$mnt"
fsck_clean "$img"

log "umount of a vlunfs mount bound over another returns at once; both daemons go on serving"
# $mnt's daemon recorded $mnt in utab, so umount runs the helper for whatever is on top there.
"$VLUNFS" "$img" "$mnt" 2>>"$WORK/daemon.log"
echo first > "$mnt/which"
make_image "$WORK/top.img" 1G --chunk-shift 4
mkdir -p "$WORK/top"
"$VLUNFS" "$WORK/top.img" "$WORK/top" 2>>"$WORK/daemon.log"
mount --bind "$WORK/top" "$mnt"
begin=$SECONDS
VLUNFS_UMOUNT_WAIT=5 umount "$mnt" || fail "umount of the bind mount (the helper waited for a daemon that still serves $WORK/top)"
[ $((SECONDS - begin)) -le 2 ] || fail "umount of the bind mount took $((SECONDS - begin)) s"
expect_eq "$(cat "$mnt/which")" first "the mount under the bind, after the bind's umount"
mountpoint -q "$WORK/top" || fail "the bound vlunfs is gone with its bind"
umount "$mnt"
umount "$WORK/top"
fsck_clean "$img"
fsck_clean "$WORK/top.img"
