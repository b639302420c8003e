#!/usr/bin/env bash
# SEEK_DATA/SEEK_HOLE and st_blocks are never less than what reads return, in every mount mode,
# even while the kernel still caches written pages the daemon has not seen (the writeback cache,
# a shared writable mmap before msync): otherwise cp (coreutils >= 9 uses SEEK_DATA) copies zeros
# where the data is. docs/posix.md, "SEEK_DATA and SEEK_HOLE".
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 4G

# Writes 4 KiB at 1 MiB into a new file and, with the file still open for writing, checks what
# lseek and fstat say: SEEK_DATA(0) at or before the data, the data's extent reaching its end,
# ENXIO only at or past the size, blocks counted.
cat >"$WORK/seek_after_write.py" <<'EOF'
import errno, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.pwrite(fd, b"D" * 4096, 1 << 20)
assert os.pread(fd, 4, 1 << 20) == b"DDDD"
end = (1 << 20) + 4096
try:
    data = os.lseek(fd, 0, os.SEEK_DATA)
except OSError as e:
    sys.exit("SEEK_DATA(0): %s" % os.strerror(e.errno))
assert data <= 1 << 20, "SEEK_DATA(0) = %d, past the data at 1 MiB" % data
hole = os.lseek(fd, data, os.SEEK_HOLE)
assert hole >= end, "SEEK_HOLE(%d) = %d, inside the data that ends at %d" % (data, hole, end)
hole0 = os.lseek(fd, 0, os.SEEK_HOLE)
assert hole0 == end or hole0 <= data, "SEEK_HOLE(0) = %d" % hole0
for whence in (os.SEEK_DATA, os.SEEK_HOLE):
    try:
        os.lseek(fd, end, whence)
        sys.exit("lseek at the size succeeded")
    except OSError as e:
        assert e.errno == errno.ENXIO, os.strerror(e.errno)
st = os.fstat(fd)
assert st.st_size == end, "size %d" % st.st_size
assert st.st_blocks > 0, "st_blocks is 0 for a file with data"
os.close(fd)
EOF

# A writer keeps the file open (its pages may still be only in the kernel) while cp copies it.
cat >"$WORK/writer.py" <<'EOF'
import os, sys, time
path, ready, done = sys.argv[1:4]
fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
block = os.urandom(65536)
for off in (0, 3 << 20, 7 << 20, (9 << 20) + 512):
    os.pwrite(fd, block, off)
open(ready, "w").close()
for _ in range(3000):  # at most 30 s, should the test die first
    if os.path.exists(done):
        break
    time.sleep(0.01)
os.close(fd)
EOF

# A thin file written through a shared mmap, checked before msync (the pages are dirty in the
# page cache, the chunk map still says hole), then copied by cp while still mapped.
cat >"$WORK/mmap_dirty.py" <<'EOF'
import mmap, os, subprocess, sys
path, copy = sys.argv[1:3]
fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.ftruncate(fd, 2 << 20)
m = mmap.mmap(fd, 2 << 20, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[1 << 20:(1 << 20) + 4096] = b"M" * 4096
data = os.lseek(fd, 0, os.SEEK_DATA)
assert data <= 1 << 20, "SEEK_DATA(0) = %d" % data
assert os.lseek(fd, data, os.SEEK_HOLE) >= (1 << 20) + 4096
m[0:4] = b"head"
subprocess.run(["cp", path, copy], check=True)
with open(copy, "rb") as c:
    got = c.read()
assert got[1 << 20:(1 << 20) + 4096] == b"M" * 4096, "cp copied zeros where the mmap wrote"
assert got[0:4] == b"head"
m.close()
os.close(fd)
EOF

for mode in default thin writeback_cache thin,writeback_cache direct_io; do
  case $mode in
    default) mount_fs "$img" "$mnt" ;;
    *) mount_fs "$img" "$mnt" -o "$mode" ;;
  esac
  log "$mode: SEEK_DATA/SEEK_HOLE/st_blocks of a file still open after a write"
  python3 "$WORK/seek_after_write.py" "$mnt/f" || fail "$mode: lseek after a write"
  # Closed: every page has reached the daemon, which answers from the chunk map.
  expect_eq "$(python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 0, os.SEEK_HOLE))' "$mnt/f")" \
    1052672 "$mode: SEEK_HOLE(0) once closed"
  rm "$mnt/f"

  log "$mode: cp of a file a writer holds open is the same bytes"
  for run in 1 2 3; do
    rm -f "$WORK/ready" "$WORK/done" "$mnt/src" "$mnt/copy"
    python3 "$WORK/writer.py" "$mnt/src" "$WORK/ready" "$WORK/done" &
    writer=$!
    for _ in $(seq 200); do [ -e "$WORK/ready" ] && break; sleep 0.02; done
    [ -e "$WORK/ready" ] || fail "$mode: the writer did not start"
    cp "$mnt/src" "$mnt/copy"
    cp "$mnt/src" "$WORK/copy-outside"
    touch "$WORK/done"
    wait "$writer"
    cmp "$mnt/src" "$mnt/copy" || fail "$mode run $run: cp's copy on the mount differs from the source"
    cmp "$mnt/src" "$WORK/copy-outside" || fail "$mode run $run: cp's copy off the mount differs from the source"
  done

  if [ "$mode" != direct_io ]; then  # direct_io refuses MAP_SHARED (test_posix_limits.sh)
    log "$mode: a shared mmap's dirty pages count as data before msync"
    python3 "$WORK/mmap_dirty.py" "$mnt/mapped" "$mnt/mapped-copy" || fail "$mode: mmap before msync"
  fi
  rm -f "$mnt"/*
  umount_fs "$mnt"
done

log "a file nobody writes keeps its holes visible (thin)"
mount_fs "$img" "$mnt" -o thin
truncate -s 600M "$mnt/sparse"
dd if=/dev/urandom of="$mnt/sparse" bs=1M count=1 seek=300 conv=notrunc status=none
expect_eq "$(python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE))' "$mnt/sparse")" \
  "268435456 0" "SEEK_DATA/SEEK_HOLE of a thin file with one chunk written"
expect_eq "$(stat -c %b "$mnt/sparse")" $((256 * 2048)) "st_blocks of a closed thin file: the chunk it owns"
umount_fs "$mnt"
fsck_clean "$img"
