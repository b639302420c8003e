#!/usr/bin/env bash
# FIFOs, Unix sockets and device nodes are inodes without a vLUN (format version 3): made with
# mkfifo, mknod and bind(2), used as any inode (chmod, chown, rename, link, unlink, utimensat),
# kept across a remount and a kill -9 (after an fsync of their directory), and fsck-clean. The
# mount is nodev: a device node is kept, but opening it is refused.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 1G
mount_fs "$img" "$mnt"
findmnt -no OPTIONS "$mnt" | grep -qw nodev || fail "the mount is not nodev: $(findmnt -no OPTIONS "$mnt")"

log "a FIFO carries data from a writer to a reader"
mkfifo -m 0640 "$mnt/fifo"
expect_eq "$(stat -c '%F %a %s %b' "$mnt/fifo")" "fifo 640 0 0" "the FIFO's type, mode, size, blocks"
( echo "through the fifo" > "$mnt/fifo" ) &
writer=$!
got=$(timeout 10 cat "$mnt/fifo") || fail "reading the FIFO"
wait "$writer"
expect_eq "$got" "through the fifo" "what the reader got"

log "device nodes keep their numbers; opening them is refused (nodev)"
mknod -m 0600 "$mnt/cdev" c 1 3
mknod -m 0600 "$mnt/bdev" b 7 200
expect_eq "$(stat -c '%F %t:%T' "$mnt/cdev")" "character special file 1:3" "the char device"
expect_eq "$(stat -c '%F %t:%T' "$mnt/bdev")" "block special file 7:c8" "the block device"
expect_fail "Permission denied" cat "$mnt/cdev"
expect_fail "Permission denied" dd if="$mnt/bdev" of=/dev/null count=1 status=none

log "a Unix socket bound on the mount takes a connection"
python3 - "$mnt/sock" <<'EOF' || fail "socket on the mount"
import os, socket, stat, sys
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
assert stat.S_ISSOCK(os.stat(path).st_mode)
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect(path)
conn, _ = server.accept()
client.sendall(b"ping")
assert conn.recv(4) == b"ping"
EOF

log "chmod, chown, utimensat, link, rename and unlink on them"
chmod 0604 "$mnt/fifo"
chown 12:34 "$mnt/cdev"
touch -h -d "2001-02-03 04:05:06 UTC" "$mnt/bdev"
ln "$mnt/fifo" "$mnt/fifo-link"
mkdir "$mnt/dir"
mv "$mnt/cdev" "$mnt/dir/cdev"
expect_eq "$(stat -c '%a %h' "$mnt/fifo")" "604 2" "the FIFO after chmod and link"
expect_eq "$(stat -c '%u:%g %t:%T' "$mnt/dir/cdev")" "12:34 1:3" "the char device after chown and rename"
expect_eq "$(stat -c %Y "$mnt/bdev")" 981173106 "the block device's mtime"
mknod "$mnt/gone" p
rm "$mnt/gone"
[ -e "$mnt/gone" ] && fail "an unlinked FIFO is still there"

umount_fs "$mnt"
fsck_clean "$img"

log "they survive a remount"
mount_fs "$img" "$mnt"
expect_eq "$(stat -c '%F %a %h' "$mnt/fifo")" "fifo 604 2" "the FIFO after remount"
expect_eq "$(stat -c '%F %u:%g %t:%T' "$mnt/dir/cdev")" "character special file 12:34 1:3" "the char device after remount"
expect_eq "$(stat -c '%F %t:%T %Y' "$mnt/bdev")" "block special file 7:c8 981173106" "the block device after remount"
expect_eq "$(stat -c %F "$mnt/sock")" "socket" "the socket after remount"

log "and a kill -9 once their directory is fsynced"
mkfifo "$mnt/dir/fifo2"
mknod "$mnt/dir/cdev2" c 10 229
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_DIRECTORY); os.fsync(fd)' "$mnt/dir"
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
umount -l "$mnt" 2>/dev/null || true
fsck_clean "$img"
mount_fs "$img" "$mnt"
expect_eq "$(stat -c %F "$mnt/dir/fifo2")" "fifo" "the FIFO made before kill -9"
expect_eq "$(stat -c '%F %t:%T' "$mnt/dir/cdev2")" "character special file a:e5" "the device made before kill -9"
rm -r "$mnt/dir" "$mnt/fifo" "$mnt/fifo-link" "$mnt/bdev" "$mnt/sock"
umount_fs "$mnt"
fsck_clean "$img"
