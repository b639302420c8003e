#!/usr/bin/env bash
# vlunctl reaches exactly the daemon serving the path it names (ioctls on the mount's files,
# vlunfs/control_ioctl.h): nobody can stand in for the daemon, it works from another network
# namespace, and on stacked mounts it acts on the top one. The daemon checks the caller: others
# cannot clone, snapshot or thin what they could not read or write, nor list what they cannot see.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 4G
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
listed() { awk -v p="$2" '$1 == p {found = 1} END {exit !found}' <<<"$1"; }

log "an unprivileged impostor listening on the old control socket name gets nothing"
mkdir -p "$mnt"
canon=$(realpath "$mnt")
# The system python (a per-user one under /root is out of nobody's reach), started directly so
# that $! is its pid.
setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0vlunfs-control:" + sys.argv[1])
s.listen(8)
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"ok\n")
    c.close()
' "$canon" &
impostor=$!
CLEANUP_HOOKS+=("kill $impostor 2>/dev/null")
for _ in $(seq 100); do grep -qF "@vlunfs-control:$canon" /proc/net/unix && break; sleep 0.05; done
grep -qF "@vlunfs-control:$canon" /proc/net/unix || fail "the impostor did not bind"
mount_fs "$img" "$mnt" -o allow_other
truncate -s 1M "$mnt/vol"
out=$("$VLUNCTL" ls "$mnt")
listed "$out" /vol || fail "vlunctl ls did not list the real daemon's /vol: '$out'"
"$VLUNCTL" info -rn "$mnt" | grep -q "^total_chunks [0-9]" || fail "vlunctl info did not answer with the pool"
"$VLUNCTL" snapshot "$mnt/vol" "$mnt/vol.snap" >/dev/null || fail "snapshot"
[ -f "$mnt/vol.snap" ] || fail "vlunctl snapshot said ok but made no snapshot"
expect_fail "Read-only file system" dd if=/dev/zero of="$mnt/vol.snap" bs=4k count=1 conv=notrunc status=none
kill "$impostor"

log "from another network namespace"
out=$(unshare -n "$VLUNCTL" ls "$mnt")
listed "$out" /vol.snap || fail "vlunctl ls in a new network namespace: '$out'"

log "a mount stacked on the same directory: vlunctl acts on the top one"
# vlunfs refuses to mount on a directory that already holds a vlunfs mount, so the second one is
# stacked as a bind mount of a mount made elsewhere: the abstract socket's name, the mountpoint,
# still named the hidden daemon.
make_image "$WORK/top.img" 4G
mkdir -p "$WORK/top"
"$VLUNFS" -f "$WORK/top.img" "$WORK/top" 2>>"$WORK/daemon.log" &
top_pid=$!
DAEMON_PIDS+=("$top_pid")
dev_top=
for _ in $(seq 100); do
  dev_top=$(awk -v m="$WORK/top" '$5 == m {print $3}' /proc/self/mountinfo)
  [ -n "$dev_top" ] && break
  sleep 0.05
done
[ -n "$dev_top" ] || fail "the second vlunfs did not mount"
dev_before=$(stat -c %d "$mnt")
mount --bind "$WORK/top" "$mnt" || fail "bind mount of the second vlunfs over the first"
[ "$(stat -c %d "$mnt")" != "$dev_before" ] || fail "the stacked mount did not appear"
truncate -s 1M "$mnt/top-only"
out=$("$VLUNCTL" ls "$mnt")
listed "$out" /top-only || fail "vlunctl ls on the stacked mount misses /top-only: '$out'"
! listed "$out" /vol || fail "vlunctl ls on the stacked mount shows the hidden mount's /vol"
"$VLUNCTL" clone "$mnt/top-only" "$mnt/top-clone" >/dev/null || fail "clone on the stacked mount"
[ -f "$mnt/top-clone" ] || fail "the clone is not on the top mount"
umount "$mnt" || fail "umount of the bind mount on top"
[ -f "$mnt/vol" ] || fail "the first mount is back on top"
umount "$WORK/top" || fail "umount of the second vlunfs"
wait "$top_pid" 2>/dev/null || true
[ ! -e "$mnt/top-clone" ] || fail "the clone went to the hidden mount"

log "the daemon checks the caller"
truncate -s 0 "$mnt/rootfile" && chmod 644 "$mnt/rootfile"
truncate -s 1M "$mnt/closed" && chmod 600 "$mnt/closed"
mkdir "$mnt/private" && chmod 700 "$mnt/private" && truncate -s 1M "$mnt/private/secret"
mkdir "$mnt/shared" && chmod 1777 "$mnt/shared"
expect_fail "Permission denied" as_nobody "$VLUNCTL" thin "$mnt/rootfile"
expect_fail "Permission denied" as_nobody "$VLUNCTL" thin --off "$mnt/rootfile"
expect_fail "Permission denied" as_nobody "$VLUNCTL" snapshot "$mnt/closed" "$mnt/shared/snap"
expect_fail "Permission denied" as_nobody "$VLUNCTL" clone "$mnt/rootfile" "$mnt/stolen"
expect_fail "Permission denied" as_nobody "$VLUNCTL" snapshot "$mnt/rootfile" "$mnt/private/stolen"
[ ! -e "$mnt/stolen" ] && [ ! -e "$mnt/private/stolen" ] && [ ! -e "$mnt/shared/snap" ] || fail "a refused clone made a file"
# A descriptor opened by root and handed to nobody does not lend root's rights: the daemon judges
# the caller of each ioctl, not whoever opened the file.
expect_fail "Permission denied" python3 - "$mnt/closed" "$(stat -c %i "$mnt/shared")" <<'PY'
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.setgroups([]); os.setgid(65534); os.setuid(65534)
ioc_clone = (3 << 30) | (280 << 16) | (0xbe << 8) | 2  # VLUNFS_IOC_CLONE; header version 2 (VLUNFS_IOC_VERSION)
request = bytearray(struct.pack("<IIIIQ256s", 2, 0, 0, 0, int(sys.argv[2]), b"from-root-fd"))
fcntl.ioctl(fd, ioc_clone, request, True)
PY
[ ! -e "$mnt/shared/from-root-fd" ] || fail "the clone through root's descriptor was made"
# Root is root by its capabilities, as in the kernel: without CAP_DAC_OVERRIDE, the mode bits rule.
as_nobody truncate -s 0 "$mnt/shared/nobodys"
chmod 644 "$mnt/shared/nobodys"
expect_fail "Permission denied" setpriv --inh-caps=-dac_override,-dac_read_search \
  --bounding-set=-dac_override,-dac_read_search "$VLUNCTL" thin "$mnt/shared/nobodys"
"$VLUNCTL" thin "$mnt/shared/nobodys" >/dev/null || fail "root thins anyone's file"
# A supplementary group counts (the daemon reads it from /proc/PID/status of the caller).
truncate -s 0 "$mnt/group-file" && chgrp 100 "$mnt/group-file" && chmod 664 "$mnt/group-file"
expect_fail "Permission denied" as_nobody "$VLUNCTL" thin "$mnt/group-file"
setpriv --reuid=65534 --regid=65534 --groups=100 "$VLUNCTL" thin "$mnt/group-file" >/dev/null ||
  fail "a member of the file's group (a supplementary one) may thin it"

log "what the caller may do, it can"
as_nobody "$VLUNCTL" clone "$mnt/rootfile" "$mnt/shared/mine" >/dev/null || fail "nobody's clone into a 1777 directory"
expect_eq "$(stat -c %U "$mnt/shared/mine")" nobody "a clone belongs to whoever made it"
as_nobody rm "$mnt/shared/mine" || fail "nobody removes their own clone"
as_nobody truncate -s 1M "$mnt/shared/mine2"
as_nobody truncate -s 0 "$mnt/shared/own"
as_nobody "$VLUNCTL" thin "$mnt/shared/own" >/dev/null || fail "the owner makes their file thin"
as_nobody truncate -s 8G "$mnt/shared/own" || fail "a thin file may be larger than the flash (4 GiB)"
as_nobody rm "$mnt/shared/own"  # fsck counts a thin file's chunks against the pool's size
as_nobody "$VLUNCTL" sync "$mnt" >/dev/null || fail "anyone may sync"
"$VLUNCTL" snapshot "$mnt/closed" "$mnt/closed.snap" >/dev/null || fail "root snapshots anything"
expect_eq "$(stat -c %U:%a "$mnt/closed.snap")" root:600 "root's snapshot keeps the source's owner"

log "ls shows others only what they could find with ls -lR"
out=$(as_nobody "$VLUNCTL" ls "$mnt")
listed "$out" /rootfile || fail "nobody should see /rootfile: '$out'"
listed "$out" /shared/mine2 || fail "nobody should see their own file: '$out'"
! listed "$out" /private/secret || fail "nobody sees a file inside a 700 directory: '$out'"
listed "$("$VLUNCTL" ls "$mnt")" /private/secret || fail "root sees every vLUN"
chmod 711 "$mnt/private"
! listed "$(as_nobody "$VLUNCTL" ls "$mnt")" /private/secret || fail "a directory others may only search hides its names"
expect_eq "$(as_nobody "$VLUNCTL" ls "$mnt" | head -1)" "$("$VLUNCTL" ls "$mnt" | head -1)" "the same header for everyone"

log "a large listing comes in pages"
mkdir "$mnt/many"
for i in $(seq 400); do : > "$mnt/many/a-file-with-a-rather-long-name-number-$i"; done
out=$("$VLUNCTL" ls "$mnt")
expect_eq "$(grep -c '^/many/' <<<"$out")" 400 "every file of a listing longer than one ioctl page"
[ "${#out}" -gt 16384 ] || fail "the listing should need several pages (${#out} bytes)"
rm -r "$mnt/many"

log "errors that say what to do"
expect_fail "not on a vlunfs mount" "$VLUNCTL" ls "$WORK"
expect_fail "same vlunfs mount" "$VLUNCTL" clone "$mnt/vol" "$WORK/elsewhere"
umount_fs "$mnt"
expect_fail "not on a vlunfs mount" "$VLUNCTL" ls "$mnt"
fsck_clean "$img"
fsck_clean "$WORK/top.img"
