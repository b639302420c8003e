#!/usr/bin/env bash
# Out-of-range requests on a real mount: sizes beyond what a vLUN can be (EFBIG: the LXT limit,
# or the whole pool for a thick one) or beyond the free chunks (ENOSPC), offsets near 2^63 and
# negative ones, fallocate overflows, over-long names, the flash filling up in the middle of a
# write, and a read-only mount refusing every change. Each one
# gets a clear error and leaves every file as it was. (Refusals of a second daemon, of corrupt
# images and permissions are in test_kill9_and_refusals.sh and test_permissions.sh.)
source "$(dirname "$0")/lib.sh" "$1"

IO="$BUILD/vlunfs-hostile-io"
[ -x "$IO" ] || fail "$IO not built"
img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 3G   # 256 MiB chunks: a handful
mount_fs "$img" "$mnt"

truncate -s 1M "$mnt/vol"
dd if=/dev/urandom of="$mnt/vol" bs=64k count=16 conv=notrunc status=none
sum=$(sha256sum < "$mnt/vol")
free0=$(chunk_free "$mnt")
unchanged() {  # unchanged WHAT: vol has its size and bytes, and the pool its free chunks
  expect_eq "$(stat -c %s "$mnt/vol")" $((1 << 20)) "size of vol after $1"
  expect_eq "$(sha256sum < "$mnt/vol")" "$sum" "contents of vol after $1"
  expect_eq "$(chunk_free "$mnt")" "$free0" "free chunks after $1"
}
expect_io_answer() {  # expect_io_answer ANSWER ARGS...
  local want=$1 got
  shift
  got=$("$IO" "$@" 2>&1) || true
  [ "$got" = "$want" ] || fail "vlunfs-hostile-io $*: got '$got', expected '$want'"
}

log "sizes: beyond a vLUN's limit or the whole pool EFBIG, beyond the free chunks ENOSPC; the file unchanged"
expect_fail "File too large" truncate -s 9223372036854775807 "$mnt/vol"
unchanged "truncate to 2^63-1"
expect_fail "File too large" truncate -s 4611686018427387904 "$mnt/vol"
unchanged "truncate to 2^62"
expect_fail "File too large" truncate -s 100G "$mnt/vol"
unchanged "truncate beyond the pool"
truncate -s $((($(stat -f -c %b "$mnt") - 1) * $(stat -f -c %S "$mnt"))) "$mnt/hog"  # every free chunk
expect_fail "No space left on device" truncate -s 2G "$mnt/vol"
rm "$mnt/hog"
unchanged "truncate beyond the free chunks"

log "offsets: near 2^63, at 2^62, negative; fallocate overflows"
expect_io_answer EFBIG pwrite "$mnt/vol" 9223372036854775000 100
expect_io_answer EFBIG pwrite "$mnt/vol" 4611686018427387904 10
expect_io_answer EINVAL pwrite "$mnt/vol" -1 10
expect_io_answer "ok 0" pread "$mnt/vol" 9223372036854775000 10
expect_io_answer EINVAL pread "$mnt/vol" -4096 10
expect_io_answer EFBIG fallocate "$mnt/vol" 0 9223372036854775000 1000
expect_io_answer EFBIG fallocate "$mnt/vol" 0 4611686018427387904 4096
expect_io_answer EFBIG fallocate "$mnt/vol" 1 4611686018427387904 4096   # FALLOC_FL_KEEP_SIZE
expect_io_answer EINVAL fallocate "$mnt/vol" 0 0 0
expect_io_answer EINVAL fallocate "$mnt/vol" 0 -5 10
unchanged "out-of-range offsets"
touch "$mnt/src"
got=$("$IO" copy "$mnt/vol" "$mnt/src" 9223372036854775000 4096 2>&1) || true
case "$got" in
  ok\ *) fail "copy_file_range to an offset near 2^63 answered '$got'" ;;
esac
expect_eq "$(stat -c %s "$mnt/src")" 0 "copy target after an out-of-range copy_file_range"
rm "$mnt/src"
unchanged "an out-of-range copy_file_range"

log "names: 256 bytes and more are refused by every call that makes one"
long=$(printf 'n%.0s' $(seq 256))
expect_fail "File name too long" mkdir "$mnt/$long"
expect_fail "File name too long" ln -s vol "$mnt/$long"
expect_fail "File name too long" ln "$mnt/vol" "$mnt/$long"
expect_fail "File name too long" mv "$mnt/vol" "$mnt/$long"
expect_fail "File name too long" mkdir "$mnt/$(printf 'n%.0s' $(seq 4000))"
unchanged "over-long names"

log "the flash fills up in the middle of a write: the writer gets ENOSPC, the other files nothing"
if dd if=/dev/zero of="$mnt/big" bs=1M status=none 2>"$WORK/dd.err"; then fail "an unbounded write into a small flash succeeded"; fi
grep -q "No space left on device" "$WORK/dd.err" || fail "the writer did not see ENOSPC: $(cat "$WORK/dd.err")"
expect_eq "$(chunk_free "$mnt")" 0 "flash full"
expect_eq "$(sha256sum < "$mnt/vol")" "$sum" "vol after the flash filled up"
big=$(stat -c %s "$mnt/big")
[ "$big" -gt 0 ] || fail "the full write kept none of its data"
expect_eq "$(tr -d '\0' < "$mnt/big" | head -c 1 | wc -c)" 0 "what the writer wrote before ENOSPC"
rm "$mnt/big"
unchanged "a write that filled the flash (and its removal)"
umount_fs "$mnt"
fsck_clean "$img"

log "read-only mount: every change is EROFS, reads work, a second daemon is still refused"
mount_fs "$img" "$mnt" -o ro
mkdir -p "$WORK/mnt2"
expect_fail "in use" "$VLUNFS" -f -o ro "$img" "$WORK/mnt2"
ro="Read-only file system"
expect_fail "$ro" touch "$mnt/new"
expect_fail "$ro" mkdir "$mnt/dir"
expect_fail "$ro" rm "$mnt/vol"
expect_fail "$ro" mv "$mnt/vol" "$mnt/vol2"
expect_fail "$ro" ln "$mnt/vol" "$mnt/vol2"
expect_fail "$ro" ln -s vol "$mnt/vol2"
expect_fail "$ro" chmod 600 "$mnt/vol"
expect_fail "$ro" chown 65534 "$mnt/vol"
expect_fail "$ro" truncate -s 2M "$mnt/vol"
expect_fail "$ro" touch -d 2001-01-01 "$mnt/vol"
expect_fail "$ro" dd if=/dev/zero of="$mnt/vol" bs=4k count=1 conv=notrunc status=none
expect_fail "$ro" fallocate -l 4M "$mnt/vol"
expect_io_answer EROFS pwrite "$mnt/vol" 0 10
expect_eq "$(sha256sum < "$mnt/vol")" "$sum" "reads on a read-only mount"
umount_fs "$mnt"
fsck_clean "$img"
