#!/usr/bin/env bash
# Limits that say what they are (docs/posix.md): EFBIG for a size no vLUN on this pool could ever
# have, ENOSPC only for a pool short of free chunks now; under -o direct_io, MAP_SHARED is refused
# with ENODEV (and --help says so) while MAP_PRIVATE and executing a program work; O_TMPFILE,
# xattrs and RENAME_WHITEOUT are refused with their documented errnos.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 1G
mount_fs "$img" "$mnt"
total=$(stat -f -c %b "$mnt")
chunk=$(stat -f -c %S "$mnt")

log "thick: larger than the pool is EFBIG, larger than its free chunks ENOSPC"
touch "$mnt/thick"
expect_fail "File too large" truncate -s 999999999999999 "$mnt/thick"
expect_fail "File too large" truncate -s $(((total + 1) * chunk)) "$mnt/thick"
truncate -s $(((total - 1) * chunk)) "$mnt/thick"
touch "$mnt/other"
expect_fail "No space left on device" truncate -s $((2 * chunk)) "$mnt/other"
expect_eq "$(stat -c %s "$mnt/other")" 0 "the refused file's size"
rm "$mnt/thick" "$mnt/other"

log "thin: past the LXT limit is EFBIG, a promise beyond the flash is fine"
touch "$mnt/thin"
"$VLUNCTL" thin "$mnt/thin" >/dev/null
expect_fail "File too large" truncate -s 999999999999999 "$mnt/thin"
truncate -s $((4 * total * chunk)) "$mnt/thin"
rm "$mnt/thin"
umount_fs "$mnt"

log "--help says what direct_io does to mmap"
"$VLUNFS" --help | grep -q "MAP_SHARED.*ENODEV" || fail "vlunfs --help does not mention MAP_SHARED under direct_io"

log "direct_io: MAP_SHARED is ENODEV, MAP_PRIVATE and exec work"
mount_fs "$img" "$mnt" -o direct_io
head -c 8192 /dev/urandom > "$mnt/data"
python3 - "$mnt/data" <<'EOF' || fail "mmap under direct_io"
import errno, mmap, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDWR)
try:
    mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ)
    sys.exit("MAP_SHARED succeeded under direct_io")
except OSError as e:
    assert e.errno == errno.ENODEV, os.strerror(e.errno)
m = mmap.mmap(fd, 8192, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
assert m[:] == os.pread(fd, 8192, 0)
m[0:4] = b"priv"  # a private copy: the file keeps its bytes
assert os.pread(fd, 4, 0) != b"priv"
m.close()
EOF
cp "$(type -P echo)" "$mnt/echo"
expect_eq "$("$mnt/echo" executed from the mount)" "executed from the mount" "a program run from a direct_io mount"
umount_fs "$mnt"

log "refused, with the documented errnos: O_TMPFILE, xattrs, RENAME_WHITEOUT"
mount_fs "$img" "$mnt"
touch "$mnt/a"
python3 - "$mnt" <<'EOF' || fail "refusals"
import ctypes, errno, os, sys
mnt = sys.argv[1]
def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0
got = errno_of(lambda: os.open(mnt, os.O_TMPFILE | os.O_RDWR, 0o600))
assert got == errno.EOPNOTSUPP, "O_TMPFILE: %s" % os.strerror(got)
got = errno_of(lambda: os.setxattr(mnt + "/a", "user.x", b"1"))
assert got == errno.ENOTSUP, "setxattr: %s" % os.strerror(got)
got = errno_of(lambda: os.getxattr(mnt + "/a", "user.x"))
assert got == errno.ENOTSUP, "getxattr: %s" % os.strerror(got)
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_WHITEOUT = -100, 4
rc = libc.renameat2(AT_FDCWD, (mnt + "/a").encode(), AT_FDCWD, (mnt + "/b").encode(), RENAME_WHITEOUT)
assert rc == -1 and ctypes.get_errno() == errno.EINVAL, "RENAME_WHITEOUT: %d %s" % (rc, os.strerror(ctypes.get_errno()))
assert os.path.exists(mnt + "/a") and not os.path.exists(mnt + "/b")
EOF
umount_fs "$mnt"
fsck_clean "$img"
