#!/usr/bin/env bash
# The data path options (vlunfs --help): each mount keeps data intact through real tools — dd at
# 1 MiB and 4 KiB, writes past the end, cp/cmp, a fio write+verify with several jobs, a read after
# the page cache was dropped, and after a remount — and leaves an image that fsck finds clean.
# A value out of range is refused before anything is mounted. No timings are asserted here:
# bench/run.sh measures.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 8G
dd if=/dev/urandom of="$WORK/src" bs=1M count=48 status=none
dd if=/dev/urandom of="$WORK/patch" bs=4k count=64 status=none

check_option() {
  local opts=$1
  log "mount -o $opts"
  mount_fs "$img" "$mnt" -o "$opts"
  # Large sequential writes, then 4 KiB writes into the middle and past the end.
  dd if="$WORK/src" of="$mnt/a" bs=1M status=none
  dd if="$WORK/patch" of="$mnt/a" bs=4k seek=1000 conv=notrunc status=none
  dd if="$WORK/patch" of="$mnt/a" bs=4k seek=$((48 * 256 + 10)) status=none
  cp "$WORK/src" "$WORK/expect"
  dd if="$WORK/patch" of="$WORK/expect" bs=4k seek=1000 conv=notrunc status=none
  dd if="$WORK/patch" of="$WORK/expect" bs=4k seek=$((48 * 256 + 10)) status=none
  cp "$mnt/a" "$mnt/b"
  sync
  expect_eq "$(stat -c %s "$mnt/a")" "$(stat -c %s "$WORK/expect")" "size after writes past the end ($opts)"
  cmp "$WORK/expect" "$mnt/a" || fail "file a differs ($opts)"
  echo 3 >/proc/sys/vm/drop_caches
  cmp "$WORK/expect" "$mnt/b" || fail "copy b differs after dropping the page cache ($opts)"
  # Concurrent random writers, each checking what it wrote.
  fio --name=verify --directory="$mnt" --size=16M --bs=4k --rw=randwrite --numjobs=3 \
      --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --ioengine=psync --fsync_on_close=1 \
      --output="$WORK/fio.out" >/dev/null || { cat "$WORK/fio.out" >&2; fail "fio verify ($opts)"; }
  truncate -s 1000 "$mnt/b"
  expect_eq "$(head -c 1000 "$WORK/expect" | sha256sum)" "$(sha256sum <"$mnt/b")" "truncated copy ($opts)"
  umount_fs "$mnt"
  fsck_clean "$img"
  mount_fs "$img" "$mnt"
  cmp "$WORK/expect" "$mnt/a" || fail "file a differs after a remount ($opts)"
  rm -f "$mnt"/*
  umount_fs "$mnt"
  fsck_clean "$img"
}

check_option direct_io
check_option writeback_cache
check_option max_threads=2,noclone_fd,max_background=4
check_option direct_io,writeback_cache
# Write-behind on every 1 MiB write, and off.
check_option write_behind=1
check_option write_behind=0
# A size in the size parser's words: 512 KiB windows.
check_option write_behind=512K
# The image opened with O_DIRECT (tests/e2e/test_image_direct.sh has the rest).
check_option image_direct
check_option image_direct,writeback_cache

# The readahead is raised on the mount's bdi (INIT then keeps 1 MiB), found through mountinfo,
# which escapes a space in the mountpoint's name.
for m in "$mnt" "$WORK/mnt with space"; do
  mount_fs "$img" "$m"
  expect_eq "$(cat "/sys/class/bdi/$(mountpoint -d "$m")/read_ahead_kb")" 1024 "read_ahead_kb of $m"
  umount_fs "$m"
done

mkdir -p "$mnt"
expect_fail "write_behind=70000: at most 65536" "$VLUNFS" -f -o write_behind=70000 "$img" "$mnt"
expect_fail "write_behind=lots" "$VLUNFS" -f -o write_behind=lots "$img" "$mnt"
expect_fail "write_behind=-8: '-8' is negative" "$VLUNFS" -f -o write_behind=-8 "$img" "$mnt"
mountpoint -q "$mnt" && fail "a refused option left a mount behind"
fsck_clean "$img"
