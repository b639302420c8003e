#!/usr/bin/env bash
# mkfs.vlunfs: sizes (one parser: units, decimals, negatives and garbage refused with a message),
# refusals without --force, a failed mkfs leaves no image behind (too small; ENOSPC on a tiny
# tmpfs) and a refused one leaves the file as it was, 512-byte blocks; --help on every program,
# and a bad option exits 2 (16 for fsck), never with CLI11's own codes; cmake --install puts
# fsck.vlunfs into sbin.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
log "creates a sparse image of the given size"
"$MKFS" --size 20G "$img" | grep -q "vlunfs format 3" || fail "mkfs output"
expect_eq "$(stat -c %s "$img")" $((20 << 30)) "image size"
[ "$(du -k "$img" | cut -f1)" -lt $((64 << 10)) ] || fail "the image is not sparse: $(du -h "$img")"

log "refuses to overwrite vlunfs or another filesystem without --force"
expect_fail "already holds a vlunfs" "$MKFS" "$img"
"$MKFS" --force "$img" >/dev/null
truncate -s 1G "$WORK/ext4.img"
mkfs.ext4 -q "$WORK/ext4.img"
expect_fail "holds ext4" "$MKFS" "$WORK/ext4.img"
"$MKFS" --force "$WORK/ext4.img" >/dev/null
"$VLUNCTL" info -rn "$WORK/ext4.img" | grep -q "^format_version 3$" || fail "info after --force"

log "bad input gets a clear error"
expect_fail "give --size" "$MKFS" "$WORK/missing.img"
expect_fail "bad size" "$MKFS" --size 12Q "$WORK/x.img"
[ ! -e "$WORK/x.img" ] || fail "a refused mkfs left an image behind"

log "sizes: one parser, with units, decimals and clear refusals"
# run COMMAND...: its exit code in $rc, its output in $out.
run() { rc=0; out=$("$@" 2>&1) || rc=$?; }
run "$MKFS" --size=-1 "$WORK/neg.img"; expect_eq "$rc" 2 "mkfs --size=-1"
case "$out" in *"'-1' is negative"*) ;; *) fail "--size=-1 said '$out', not that it is negative" ;; esac
expect_fail "is not a size" "$MKFS" --size 1x5 "$WORK/garbage.img"
expect_fail "is not a whole number of bytes" "$MKFS" --size 1.3 "$WORK/frac.img"
expect_fail "is not a multiple of the block size" "$MKFS" --size 1000000001 "$WORK/odd.img"
for size in 1.5T 10GiB 10G 1073741824; do
  "$MKFS" -q --size "$size" "$WORK/s.img" || fail "mkfs --size $size refused"
  want=$(numfmt --from=iec "${size%iB}")
  expect_eq "$(stat -c %s "$WORK/s.img")" "$want" "image size for --size $size"
  rm "$WORK/s.img"
done
for f in neg garbage frac odd; do [ ! -e "$WORK/$f.img" ] || fail "a refused size left $f.img behind"; done
"$MKFS" -q --size 1G "$WORK/quiet.img" >"$WORK/quiet.out" 2>&1
expect_eq "$(wc -c <"$WORK/quiet.out")" 0 "bytes printed by mkfs -q"

log "the chunk shift: mkfs takes exactly the range a mount and fsck take (vlunfs/chunk_shift.h)"
for shift in 0 17; do
  run "$MKFS" --size 1G --chunk-shift "$shift" "$WORK/shift.img"; expect_eq "$rc" 2 "mkfs --chunk-shift $shift"
  case "$out" in *"--chunk-shift"*"not in range 1 to 16"*) ;; *) fail "mkfs --chunk-shift $shift said '$out', not the range" ;; esac
  [ ! -e "$WORK/shift.img" ] || fail "a refused --chunk-shift $shift left an image behind"
done
"$MKFS" -q --size 1G --chunk-shift 1 "$WORK/shift.img" || fail "mkfs --chunk-shift 1 (the range's low end) refused"
fsck_clean "$WORK/shift.img"
rm "$WORK/shift.img"

log "a failed mkfs removes the image it created; one it refused is left as it was"
run "$MKFS" --size 1M "$WORK/tiny.img"; expect_eq "$rc" 1 "mkfs of an image too small for the metadata"
case "$out" in *"cannot format"*"the image it created is removed"*) ;; *) fail "mkfs --size 1M said '$out'" ;; esac
[ ! -e "$WORK/tiny.img" ] || fail "a failed mkfs left tiny.img behind"
mkdir "$WORK/small"
# Two pages: room for a sparse image, not for its superblocks, checkpoints and journal block.
mount -t tmpfs -o size=8k tmpfs "$WORK/small"
LOOP_MOUNTS+=("$WORK/small")
run "$MKFS" --size 4G "$WORK/small/flash.img"; expect_eq "$rc" 1 "mkfs of an image on a full tmpfs"
case "$out" in *"No space left on device"*) ;; *) fail "mkfs on a full tmpfs said '$out'" ;; esac
expect_eq "$(ls -A "$WORK/small")" "" "files left on the tmpfs by a failed mkfs"
umount "$WORK/small"
truncate -s 1G "$WORK/other.img"
mkfs.ext4 -q "$WORK/other.img"
before=$(sha256sum <"$WORK/other.img")
expect_fail "holds ext4" "$MKFS" --size 2G "$WORK/other.img"
expect_eq "$(sha256sum <"$WORK/other.img")" "$before" "a refused image's bytes"
expect_eq "$(stat -c %s "$WORK/other.img")" $((1 << 30)) "a refused image's size"

log "512-byte blocks: the vLUN life cycle works the same"
"$MKFS" --size 4G --block-size 512 "$WORK/b512.img" >/dev/null
mnt=$WORK/mnt
mount_fs "$WORK/b512.img" "$mnt"
expect_fail "it is mounted" "$MKFS" --force --size 8G "$WORK/b512.img"
expect_eq "$(stat -c %s "$WORK/b512.img")" $((4 << 30)) "size of a mounted image after a refused mkfs --size"
dd if=/dev/urandom of="$WORK/data" bs=1000 count=3000 status=none
cp "$WORK/data" "$mnt/f"
truncate -s 100M "$mnt/g"
cmp "$WORK/data" "$mnt/f" || fail "data through 512-byte blocks"
umount_fs "$mnt"
fsck_clean "$WORK/b512.img"

log "--help on every program"
"$VLUNFS" --help | grep -q "usage: " || fail "vlunfs --help"
"$MKFS" --help | grep -q -- "--size" || fail "mkfs.vlunfs --help"
"$VLUNCTL" --help | grep -q "fsck" || fail "vlunctl --help"
"$VLUNCTL" fsck --help | grep -q -- "-p,-a,--preen" || fail "vlunctl fsck --help"
"$BUILD/fsck.vlunfs" --help | grep -q "Exit codes (fsck(8))" || fail "fsck.vlunfs --help"
{ "$BUILD/mount.vlunfs" 2>&1 || true; } | grep -q "usage" || fail "mount.vlunfs usage"

log "a bad option is a usage error: exit 2, and 16 for fsck (fsck(8)'s code)"
run "$MKFS" --bogus "$img"; expect_eq "$rc" 2 "mkfs.vlunfs --bogus"
run "$MKFS" "$img" extra; expect_eq "$rc" 2 "mkfs.vlunfs with an extra argument"
run "$VLUNCTL" --bogus; expect_eq "$rc" 2 "vlunctl --bogus"
run "$VLUNCTL"; expect_eq "$rc" 2 "vlunctl without a subcommand"
run "$VLUNCTL" info; expect_eq "$rc" 2 "vlunctl info without its argument"
run "$VLUNFS" --bogus "$img" "$mnt"; expect_eq "$rc" 2 "vlunfs --bogus"
run "$VLUNFS" -o write_behind=-1 "$img" "$mnt"; expect_eq "$rc" 2 "vlunfs -o write_behind=-1"
case "$out" in *"is negative"*) ;; *) fail "vlunfs -o write_behind=-1 said '$out'" ;; esac
mountpoint -q "$mnt" && fail "a refused vlunfs mounted"
run "$BUILD/fsck.vlunfs" --bogus "$img"; expect_eq "$rc" 16 "fsck.vlunfs --bogus"
run "$BUILD/fsck.vlunfs"; expect_eq "$rc" 16 "fsck.vlunfs without a device"
run "$BUILD/fsck.vlunfs" -n -y "$img"; expect_eq "$rc" 16 "fsck.vlunfs -n -y"
run "$VLUNCTL" fsck --bogus "$img"; expect_eq "$rc" 16 "vlunctl fsck --bogus"
run "$BUILD/fsck.vlunfs" --version; expect_eq "$rc" 0 "fsck.vlunfs --version"

log "cmake --install puts fsck.vlunfs into sbin, beside mkfs.vlunfs"
# Staged (DESTDIR): the mount helpers go to /sbin whatever the prefix, and this machine's /sbin is
# not the test's to change.
DESTDIR="$WORK/stage" cmake --install "$BUILD" --prefix /usr/local >/dev/null
for p in fsck.vlunfs mkfs.vlunfs vlunctl; do
  [ -x "$WORK/stage/usr/local/sbin/$p" ] || fail "$p is not installed in sbin: $(ls "$WORK/stage/usr/local"/*)"
done
# /sbin, or /usr/sbin where /sbin is a link to it (merged /usr): the top-level CMakeLists.txt.
helper_dir=$(sed -n 's/^VLUNFS_MOUNT_HELPER_DIR:PATH=//p' "$BUILD/CMakeCache.txt")
case "$helper_dir" in /sbin|/usr/sbin) ;; *) fail "the mount helpers go to '$helper_dir', not where util-linux looks" ;; esac
[ "$helper_dir" -ef /sbin ] || fail "the mount helpers go to $helper_dir, which is not /sbin on this machine"
for h in mount.vlunfs mount.fuse.vlunfs umount.fuse.vlunfs fsck.vlunfs; do
  [ -x "$WORK/stage$helper_dir/$h" ] || fail "$h is not installed in $helper_dir, where util-linux looks"
done
