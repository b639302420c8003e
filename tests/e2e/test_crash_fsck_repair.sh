#!/usr/bin/env bash
# vlunctl fsck on hand-damaged images: a damaged superblock copy (exit 4; --repair exit 1; then 0,
# every file intact), an orphan left by a kill -9 (a note, exit 0; --repair frees it), an unusable
# fallback checkpoint (a note; --repair rewrites it), both superblocks gone (exit 4, refused with a
# message, not repairable), a mounted image (exit 8), and the progress line. e2fsck's options:
# -n changes nothing, -p preens, -y (and --repair) repairs. A healthy image with a thin vLUN five
# times the pool, its snapshot and its clone checks clean. fsck.vlunfs is what `fsck -t vlunfs`
# runs, and its exit code comes through fsck(8).
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 2G --chunk-shift 8   # 1 MiB chunks
mount_fs "$img" "$mnt"
mkdir -p "$mnt/dir/sub"
dd if=/dev/urandom of="$mnt/dir/data" bs=1M count=5 status=none
truncate -s 20M "$mnt/vol"
ln -s ../vol "$mnt/dir/sub/link"
ln "$mnt/dir/data" "$mnt/hardlink"
sum=$(sha256sum < "$mnt/dir/data")
umount_fs "$mnt"
fsck_clean "$img"

# fsck_expect CODE ARGS...: vlunctl fsck ARGS must exit with CODE; its output is in $out.
fsck_expect() {
  local want=$1 rc=0
  shift
  out=$("$VLUNCTL" fsck "$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || { echo "$out" >&2; fail "vlunctl fsck $*: exit $rc, expected $want"; }
}
u64() { od -An -tu8 -j "$2" -N 8 "$1" | tr -d ' '; }  # u64 IMAGE OFFSET
damage() { printf 'DAMAGED!' | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }  # damage IMAGE OFFSET
intact() {
  mount_fs "$img" "$mnt"
  expect_eq "$(sha256sum < "$mnt/dir/data")" "$sum" "data after $1"
  expect_eq "$(sha256sum < "$mnt/hardlink")" "$sum" "hard link after $1"
  expect_eq "$(stat -c %s "$mnt/vol")" $((20 << 20)) "vol after $1"
  expect_eq "$(readlink "$mnt/dir/sub/link")" "../vol" "symlink after $1"
  umount_fs "$mnt"
}
in_use() {  # the superblock copy a mount uses, from fsck's note
  "$VLUNCTL" fsck "$img" | sed -n 's/^note: superblock copy \([01]\), generation.*/\1/p'
}

log "a damaged superblock copy: exit 4 naming it, -n changes nothing, --repair exit 1, then exit 0"
other=$((1 - $(in_use)))
damage "$img" $((other * 4096 + 40))
fsck_expect 4 "$img"
case "$out" in *"superblock copy $other at byte $((other * 4096))"*) ;; *) echo "$out" >&2; fail "fsck did not name the damaged copy" ;; esac
damaged=$(sha256sum <"$img")
fsck_expect 4 -n "$img"
fsck_expect 4 -n -f "$img"
expect_eq "$(sha256sum <"$img")" "$damaged" "the image after fsck -n"
fsck_expect 1 --repair "$img"
case "$out" in *"fixed: "*) ;; *) echo "$out" >&2; fail "--repair did not say what it did" ;; esac
fsck_expect 0 "$img"
intact "repairing a superblock copy"

log "an unusable fallback checkpoint (what an interrupted checkpoint leaves): a note, -p rewrites it"
other=$((1 - $(in_use)))
slot=$(u64 "$img" $((56 + 8 * other)))
damage "$img" $((slot + 100))
fsck_expect 0 "$img"
case "$out" in *"note: checkpoint slot $other"*) ;; *) echo "$out" >&2; fail "fsck did not mention the fallback slot" ;; esac
fsck_expect 1 -p "$img"
fsck_expect 0 "$img"
case "$out" in *"checkpoint slot"*) echo "$out" >&2; fail "the fallback slot is still unusable after --repair" ;; esac
intact "rewriting the fallback checkpoint"

log "an orphan left by kill -9 (a file unlinked while open): a note; --repair frees its chunks"
mount_fs "$img" "$mnt"
free_before=$(chunk_free "$mnt")
truncate -s 8M "$mnt/doomed"
exec 3<"$mnt/doomed"
rm "$mnt/doomed"
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
exec 3<&-
umount -l "$mnt" 2>/dev/null || true
fsck_expect 0 "$img"
case "$out" in *"orphan (unlinked while open)"*) ;; *) echo "$out" >&2; fail "fsck did not report the orphan" ;; esac
fsck_expect 1 -y "$img"
case "$out" in *"orphan (no name) removed, 8 chunks freed"*) ;; *) echo "$out" >&2; fail "--repair did not free the orphan" ;; esac
fsck_expect 0 "$img"
mount_fs "$img" "$mnt"
expect_eq "$(chunk_free "$mnt")" "$free_before" "free chunks after the orphan was repaired"
umount_fs "$mnt"
intact "freeing an orphan"

log "a mounted image: exit 8"
mount_fs "$img" "$mnt"
fsck_expect 8 "$img"
case "$out" in *"mounted"*) ;; *) echo "$out" >&2; fail "fsck of a mounted image did not say so" ;; esac
umount_fs "$mnt"

log "the progress line"
out=$("$VLUNCTL" fsck --progress "$img" 2>&1 >/dev/null)
case "$out" in *"fsck: checking "*" inodes"*"(100%)"*) ;; *) echo "$out" >&2; fail "no progress line on stderr" ;; esac

log "both superblocks destroyed: exit 4 with a message, --repair cannot help"
cp --sparse=always "$img" "$WORK/broken.img"
damage "$WORK/broken.img" 40
damage "$WORK/broken.img" $((4096 + 40))
fsck_expect 4 "$WORK/broken.img"
case "$out" in *"no usable superblock"*) ;; *) echo "$out" >&2; fail "no message for an unusable image" ;; esac
fsck_expect 4 --repair "$WORK/broken.img"
truncate -s 1G "$WORK/blank.img"
fsck_expect 8 "$WORK/blank.img"
case "$out" in *"not formatted with vlunfs"*) ;; *) echo "$out" >&2; fail "no message for a blank image" ;; esac
fsck_clean "$img"

log "a thin vLUN of 100 GiB on a 20 GiB pool, with a snapshot and a clone: clean, and -y has nothing to do"
thin=$WORK/thin.img
make_image "$thin" 20G
mount_fs "$thin" "$mnt" -o thin
truncate -s 100G "$mnt/big"
dd if=/dev/urandom of="$mnt/big" bs=1M count=3 seek=$((60 << 10)) conv=notrunc status=none
"$VLUNCTL" snapshot "$mnt/big" "$mnt/big-snap" >/dev/null
"$VLUNCTL" clone "$mnt/big" "$mnt/big-clone" >/dev/null
dd if=/dev/urandom of="$mnt/big-clone" bs=1M count=1 seek=$((90 << 10)) conv=notrunc status=none
umount_fs "$mnt"
fsck_expect 0 "$thin"
case "$out" in *"(3 files,"*) ;; *) echo "$out" >&2; fail "fsck did not count the thin vLUN, its snapshot and its clone" ;; esac
fsck_expect 0 -y "$thin"
fsck_expect 0 -p "$thin"

log "fsck -t vlunfs runs fsck.vlunfs and passes its exit code on"
fsck_t() {  # fsck_t CODE ARGS...: fsck(8) with the build's fsck.vlunfs first in PATH
  local want=$1 rc=0
  shift
  out=$(PATH="$BUILD:$PATH" fsck -t vlunfs "$@" 2>&1) || rc=$?
  [ "$rc" -eq "$want" ] || { echo "$out" >&2; fail "fsck -t vlunfs $*: exit $rc, expected $want"; }
}
fsck_t 0 "$thin"
case "$out" in *"$thin: "*"clean"*) ;; *) echo "$out" >&2; fail "fsck -t vlunfs did not run fsck.vlunfs" ;; esac
damage "$thin" $((4096 + 40))
fsck_t 4 "$thin"
fsck_t 4 -n "$thin"
fsck_t 1 -a "$thin"
fsck_t 0 "$thin"
mount_fs "$thin" "$mnt"
fsck_t 8 "$thin"
umount_fs "$mnt"

log "fsck interrupted (SIGINT) exits 32, fsck(8)'s 'cancelled'"
# A FIFO with no writer: opening it read-only waits, so the interrupt comes during the check.
mkfifo "$WORK/fifo"
"$BUILD/fsck.vlunfs" -n "$WORK/fifo" >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
expect_eq "$rc" 32 "exit code of an interrupted fsck"
