#!/usr/bin/env bash
# A container with its own volume on CAPI flash: provisions a vLUN (thick: every chunk reserved
# now; thin: chunks on first write) on a vlunfs mount, makes ext4 in it, loop-mounts it, and hands
# it to the container at /volume with --mount. When the container exits the volume is unmounted
# and the vLUN removed, which gives its chunks back to the pool (zeroed).
#
# usage: container-volume.sh [--thin] [--size SIZE] [--name NAME] [--image IMAGE] [--runtime R]
#                            VLUNFS_MOUNTPOINT [-- COMMAND [ARG...]]
#   --size SIZE     the volume's size (truncate(1) units; default 1G)
#   --name NAME     the vLUN's file name on the mount (default container-PID.ext4)
#   --image IMAGE   the container image (default debian:12)
#   --runtime R     podman, docker or unshare; default: the first of podman and docker whose engine
#                   answers, else unshare, which runs COMMAND on the host in a private mount
#                   namespace (unshare --mount) with the volume as its working directory
#   --keep          leave the volume (and its chunks) in place afterwards
# COMMAND sees the volume's path in $VLUNFS_VOLUME. Exit status: COMMAND's; 2 for a usage error,
# 1 when the volume cannot be made. $VLUNCTL names vlunctl if it is not on PATH. Run as root.
# Example:
#   contrib/container-volume.sh --thin --size 20G /mnt/flash -- sh -c 'df -h /volume'
set -euo pipefail

usage() {  # usage [STATUS]: the lines of the comment above from "usage:" on
  if [ "${1:-2}" -eq 0 ]; then sed -n 's/^# \{0,1\}//; 7,17p' "$0"; else sed -n 's/^# \{0,1\}//; 7,17p' "$0" >&2; fi
  exit "${1:-2}"
}
die() {
  echo "container-volume.sh: $*" >&2
  exit 1
}

thin=0 size=1G name="" image=debian:12 runtime="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --thin) thin=1; shift ;;
    --size) [ $# -ge 2 ] || usage; size=$2; shift 2 ;;
    --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
    --image) [ $# -ge 2 ] || usage; image=$2; shift 2 ;;
    --runtime) [ $# -ge 2 ] || usage; runtime=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage 0 ;;
    --) usage ;;
    -*) echo "container-volume.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
mnt=$1
shift
if [ $# -gt 0 ]; then
  [ "$1" = -- ] || usage
  shift
fi
[ $# -gt 0 ] || set -- sh -c 'df -h "$VLUNFS_VOLUME" && ls -la "$VLUNFS_VOLUME"'
[ "$(id -u)" -eq 0 ] || die "run as root (losetup and mount need it)"
findmnt -n -t fuse.vlunfs --mountpoint "$mnt" >/dev/null ||
  die "$mnt is not a vlunfs mount (mount one first: vlunfs IMAGE $mnt)"
vlunctl=${VLUNCTL:-$(command -v vlunctl || true)}
[ -n "$vlunctl" ] || die "vlunctl is not on PATH (install vlunfs, or set VLUNCTL to it)"

# A container engine that answers, not only a client binary (docker's client runs without one).
if [ -z "$runtime" ]; then
  runtime=unshare
  for candidate in podman docker; do
    if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then
      runtime=$candidate
      break
    fi
  done
fi
case "$runtime" in podman|docker|unshare) ;; *) die "--runtime must be podman, docker or unshare, not '$runtime'" ;; esac

vol=$mnt/${name:-container-$$.ext4}
[ ! -e "$vol" ] || die "$vol exists; pick another --name or remove it"
dir=$(mktemp -d /run/vlunfs-volume.XXXXXX)
teardown() {
  set +e
  mountpoint -q "$dir" && umount "$dir"
  rmdir "$dir"
  if [ "$keep" -eq 0 ] && [ -e "$vol" ]; then rm -f "$vol"; fi
}
trap teardown EXIT

touch "$vol"
# thin must come while the file is empty (vlunctl(8)); truncate then maps no chunk.
[ "$thin" -eq 1 ] && "$vlunctl" thin "$vol" >/dev/null
truncate -s "$size" "$vol" || die "cannot provision $size on $mnt (df $mnt shows what is free)"
mkfs.ext4 -q -F "$vol" || die "mkfs.ext4 $vol failed"
# A loop device with autoclear: it goes away with the unmount.
mount -o loop "$vol" "$dir" || die "cannot loop-mount $vol"

status=0
case "$runtime" in
  podman|docker)
    "$runtime" run --rm --mount "type=bind,source=$dir,target=/volume" -e VLUNFS_VOLUME=/volume \
      "$image" "$@" || status=$?
    ;;
  unshare)
    (cd "$dir" && VLUNFS_VOLUME=$dir unshare --mount --propagation private -- "$@") || status=$?
    ;;
esac
exit "$status"
