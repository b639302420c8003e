#!/usr/bin/env bash
# contrib/container-volume.sh: a thick and a thin vLUN with ext4, loop-mounted and handed to the
# "container" (podman or docker when an engine answers; else unshare --mount stands in), then
# torn down: the volume unmounted, its loop device gone, the vLUN removed and its chunks back.
source "$(dirname "$0")/lib.sh" "$1"
recipe=$(cd "$(dirname "$0")/../../contrib" && pwd)/container-volume.sh
export VLUNCTL

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 2G --chunk-shift 8  # 1 MiB chunks: a small pool, quick to provision
mount_fs "$img" "$mnt"
free_before=$(chunk_free "$mnt")
loops_before=$(losetup -a | wc -l)

# What the command inside sees, written where the test can read it afterwards.
inside='echo hello > "$VLUNFS_VOLUME/hello" && cat "$VLUNFS_VOLUME/hello" &&
  findmnt -n -o FSTYPE --target "$VLUNFS_VOLUME" && stat -f -c %f "$1" && readlink /proc/self/ns/mnt'

for kind in thick thin; do
  log "$kind volume through the unshare stand-in"
  flags=(--runtime unshare --size 64M --name "$kind.ext4")
  [ "$kind" = thin ] && flags+=(--thin)
  bash "$recipe" "${flags[@]}" "$mnt" -- sh -c "$inside" sh "$mnt" >"$WORK/$kind.out" 2>&1 ||
    { cat "$WORK/$kind.out"; fail "container-volume.sh ($kind)"; }
  mapfile -t seen <"$WORK/$kind.out"
  expect_eq "${seen[0]}" hello "what the command wrote and read back on its volume"
  expect_eq "${seen[1]}" ext4 "the volume's filesystem, inside"
  free_inside=${seen[2]}
  [ "${seen[3]}" != "$(readlink /proc/self/ns/mnt)" ] || fail "the command ran in the test's own mount namespace"
  used=$((free_before - free_inside))
  if [ "$kind" = thick ]; then
    expect_eq "$used" 64 "chunks a thick 64M volume takes (all of them, at once)"
  else
    [ "$used" -gt 0 ] && [ "$used" -lt 64 ] || fail "a thin 64M volume took $used chunks (expected some, fewer than 64)"
  fi
  [ ! -e "$mnt/$kind.ext4" ] || fail "the $kind volume was not removed"
  expect_eq "$(chunk_free "$mnt")" "$free_before" "free chunks after the $kind volume"
  expect_eq "$(losetup -a | wc -l)" "$loops_before" "loop devices after the $kind volume"
  ls -d /run/vlunfs-volume.* 2>/dev/null && fail "the volume's mount directory was left behind"
done

log "the command's exit status is the recipe's, and the volume is torn down all the same"
rc=0
bash "$recipe" --runtime unshare --size 8M "$mnt" -- sh -c 'exit 7' >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 7 "exit status of a failing command"
expect_eq "$(chunk_free "$mnt")" "$free_before" "free chunks after a failing command"

log "refusals: not a vlunfs mount, more than the pool holds"
expect_fail "is not a vlunfs mount" bash "$recipe" --runtime unshare "$WORK" -- true
expect_fail "cannot provision" bash "$recipe" --runtime unshare --size 4G "$mnt" -- true
expect_eq "$(ls "$mnt")" "" "files left on the mount by refused runs"

log "runtime detection: an engine that does not answer is not used"
if command -v docker >/dev/null && ! docker info >/dev/null 2>&1 && ! command -v podman >/dev/null; then
  bash "$recipe" --size 8M "$mnt" -- sh -c 'echo "$VLUNFS_VOLUME"' >"$WORK/auto.out" 2>&1 ||
    { cat "$WORK/auto.out"; fail "container-volume.sh with docker's client but no engine"; }
  grep -q '^/run/vlunfs-volume\.' "$WORK/auto.out" || fail "did not fall back to unshare: $(cat "$WORK/auto.out")"
fi
umount_fs "$mnt"
fsck_clean "$img"
