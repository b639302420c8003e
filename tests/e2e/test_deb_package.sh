#!/usr/bin/env bash
# The Debian package: cpack -G DEB builds it from the build tree (or VLUNFS_DEB names one), with
# its dependencies declared; dpkg -i installs the programs, the helpers where util-linux looks,
# the man pages, completion and contrib/; an fstab line mounts through `mount -a -T FSTAB` and
# the installed helpers, fsck(8) finds fsck.vlunfs, the contrib units verify; and dpkg -r removes
# every file it installed. The package is removed on every way out, so a failure leaves the
# machine as it was; the test refuses to run where vlunfs is already installed.
source "$(dirname "$0")/lib.sh" "$1"
command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps is missing (apt-get install dpkg-dev)"

deb=${VLUNFS_DEB:-}
if [ -z "$deb" ]; then
  log "cpack -G DEB"
  cpack -G DEB -B "$WORK/pkg" --config "$BUILD/CPackConfig.cmake" >"$WORK/cpack.out" 2>&1 ||
    { cat "$WORK/cpack.out"; fail "cpack -G DEB"; }
  deb=$(ls "$WORK"/pkg/vlunfs_*.deb)
fi
[ -f "$deb" ] || fail "no package at '$deb'"

log "the package: its name, dependencies and contents"
expect_eq "$(dpkg-deb -f "$deb" Package)" vlunfs "package name"
depends=$(dpkg-deb -f "$deb" Depends)
for dep in libfuse3 fuse3 libisal libblkid util-linux; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
# Every path the package holds (./usr/bin/vlunfs -> /usr/bin/vlunfs), files and directories.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\.||; s|/$||' | grep -v '^$' >"$WORK/contents"
files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\.||')
for f in /usr/bin/vlunfs /usr/sbin/mkfs.vlunfs /usr/sbin/vlunctl /usr/sbin/fsck.vlunfs \
  /usr/sbin/mount.vlunfs /usr/sbin/mount.fuse.vlunfs /usr/sbin/umount.fuse.vlunfs \
  /usr/share/man/man8/vlunfs.8 /usr/share/man/man8/mount.vlunfs.8 /usr/share/man/man5/vlunfs.5 \
  /usr/share/bash-completion/completions/vlunctl /usr/share/vlunfs/contrib/container-volume.sh \
  /usr/share/vlunfs/contrib/systemd/vlunfs@.service /usr/share/vlunfs/contrib/fio/jobs.fio; do
  grep -qx "$f" <<<"$files" || fail "the package lacks $f"
done
grep -q '^/usr/local\|^/sbin/' <<<"$files" && fail "the package holds files outside /usr: $(grep '^/usr/local\|^/sbin/' <<<"$files")"

# Installing must not overwrite anything: not vlunfs installed already, nor a file it would own.
dpkg-query -W vlunfs >/dev/null 2>&1 && fail "the package vlunfs is installed on this machine; this test installs and removes it"
for f in $files; do
  [ ! -e "$f" ] || fail "$f exists already (a cmake --install?); the test would remove it with the package"
done

mnt=$WORK/mnt
img=$WORK/flash.img
# Runs first at cleanup: the mount before the package that serves it.
CLEANUP_HOOKS+=("mountpoint -q $mnt && umount $mnt; dpkg-query -W vlunfs >/dev/null 2>&1 && dpkg -r vlunfs >/dev/null")
log "dpkg -i"
dpkg -i "$deb" >"$WORK/dpkg.out" 2>&1 || { cat "$WORK/dpkg.out"; fail "dpkg -i $deb"; }
for f in $files; do [ -e "$f" ] || fail "dpkg -i did not install $f"; done
expect_eq "$(/usr/bin/vlunfs --version | awk '{print $2}')" "$(dpkg-deb -f "$deb" Version)" "installed vlunfs --version"
MANPATH=/usr/share/man man -w 8 mount.fuse.vlunfs >/dev/null || fail "man cannot find mount.fuse.vlunfs(8)"

log "mount -a -T FSTAB, through the installed mount.vlunfs and daemon"
/usr/sbin/mkfs.vlunfs -q --size 4G "$img"
mkdir -p "$mnt"
printf '%s  %s  vlunfs  defaults  0  0\n' "$img" "$mnt" >"$WORK/fstab"
mount -a -T "$WORK/fstab" || fail "mount -a -T $WORK/fstab"
grep -q " $mnt fuse.vlunfs " /proc/mounts || fail "mount -a made no fuse.vlunfs mount at $mnt"
expect_eq "$(findmnt -n -o SOURCE --mountpoint "$mnt")" "$img" "the mount's source"
# The daemon: the vlunfs process that has the image open (other mounts may run beside this test).
daemon_exe=""
for pid in $(pgrep -x vlunfs); do
  for fd in /proc/"$pid"/fd/*; do
    [ "$fd" -ef "$img" ] && daemon_exe=$(readlink "/proc/$pid/exe")
  done
done
expect_eq "$daemon_exe" /usr/bin/vlunfs "the daemon that serves the mount"
truncate -s 300M "$mnt/vol"
echo persisted >"$mnt/note"
/usr/sbin/vlunctl ls "$mnt" | grep -q vol || fail "vlunctl ls"
# umount.fuse.vlunfs: umount returns once the image is released, so fsck(8) may run at once.
umount "$mnt" || fail "umount $mnt"
fsck -t vlunfs -n "$img" >"$WORK/fsck.out" 2>&1 || { cat "$WORK/fsck.out"; fail "fsck -t vlunfs (fsck.vlunfs from the package)"; }
grep -q clean "$WORK/fsck.out" || fail "fsck -t vlunfs said: $(cat "$WORK/fsck.out")"

if command -v systemd-analyze >/dev/null; then
  log "systemd-analyze verify the installed contrib units"
  units=$WORK/units
  mkdir -p "$units"
  cp /usr/share/vlunfs/contrib/systemd/* "$units/"
  ln -s vlunfs@.service "$units/vlunfs@$(systemd-escape --path /var/lib/flash.img).service"
  for unit in "$units/mnt-flash.mount" "$units/vlunfs@var-lib-flash.img.service"; do
    out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $(basename "$unit"): $out"
    [ -z "$out" ] || fail "systemd-analyze verify $(basename "$unit") warns: $out"
  done
fi

log "dpkg -r removes every file"
dpkg -r vlunfs >"$WORK/dpkg.out" 2>&1 || { cat "$WORK/dpkg.out"; fail "dpkg -r vlunfs"; }
left=$(while read -r path; do
  case "$path" in /usr|/usr/bin|/usr/sbin|/usr/share|/usr/share/man|/usr/share/man/man*|/usr/share/doc|/usr/share/bash-completion|/usr/share/bash-completion/completions) continue ;; esac
  if [ -e "$path" ]; then echo "$path"; fi
done <"$WORK/contents")
[ -z "$left" ] || fail "dpkg -r left behind: $left"
