# Shared by the end-to-end tests: a scratch directory, a mounted vlunfs, assertions, and cleanup
# that always runs (unmounts loop devices and FUSE mounts, stops daemons) even when a test fails.
# Usage in a test: source lib.sh "$1"  (the build directory)
set -euo pipefail

BUILD=$(cd "${1:?usage: test.sh BUILD_DIR}" && pwd)
VLUNFS="$BUILD/vlunfs"
MKFS="$BUILD/mkfs.vlunfs"
VLUNCTL="$BUILD/vlunctl"
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/vlunfs-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
DAEMON_PIDS=()
LOOP_MOUNTS=()
CLEANUP_HOOKS=()  # commands run first at cleanup

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}
expect_eq() {  # expect_eq ACTUAL EXPECTED WHAT
  [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}
# expect_fail ERRNO_TEXT COMMAND...: the command must fail and say ERRNO_TEXT on stderr.
expect_fail() {
  local want=$1
  shift
  local out
  if out=$("$@" 2>&1); then fail "'$*' succeeded, expected: $want"; fi
  case "$out" in
    *"$want"*) ;;
    *) fail "'$*' failed with '$out', expected: $want" ;;
  esac
}

cleanup() {
  local rc=$?
  set +e
  for hook in "${CLEANUP_HOOKS[@]}"; do eval "$hook"; done
  for m in "${LOOP_MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  # Loop devices backed by files in this test's scratch directory.
  losetup -a 2>/dev/null | grep -F "$WORK" | cut -d: -f1 | while read -r dev; do losetup -d "$dev"; done
  # /proc/mounts writes a space in a path as \040: printf %b turns it back.
  grep -F " $WORK" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
    m=$(printf '%b' "$m")
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for pid in "${DAEMON_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    fi
  done
  rm -rf "$WORK"
  if [ $rc -eq 0 ]; then log "PASS"; else log "FAILED (exit $rc)"; fi
  exit $rc
}
trap cleanup EXIT

# make_image PATH SIZE [mkfs options...]
make_image() {
  local path=$1 size=$2
  shift 2
  "$MKFS" --size "$size" "$@" "$path" >/dev/null
}

# mount_fs IMAGE MOUNTPOINT [daemon options...]: runs the daemon in the foreground, in the
# background of this shell, and waits for the mount to appear. MOUNT_PID is the daemon.
mount_fs() {
  local image=$1 mnt=$2
  shift 2
  mkdir -p "$mnt"
  "$VLUNFS" -f "$@" "$image" "$mnt" 2>>"$WORK/daemon.log" &
  MOUNT_PID=$!
  DAEMON_PIDS+=("$MOUNT_PID")
  for _ in $(seq 100); do
    if mountpoint -q "$mnt"; then return 0; fi
    kill -0 "$MOUNT_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; fail "daemon exited while mounting $image"; }
    sleep 0.05
  done
  fail "mount of $image on $mnt did not appear"
}

# umount_fs MOUNTPOINT: unmounts and waits for the daemon to finish writing its checkpoint.
umount_fs() {
  local mnt=$1
  umount "$mnt" || fail "umount $mnt"
  if [ -n "${MOUNT_PID:-}" ]; then
    wait "$MOUNT_PID" 2>/dev/null || true
  fi
}

fsck_clean() {  # fsck_clean IMAGE: vlunctl fsck must exit 0
  local out
  out=$("$VLUNCTL" fsck "$1" 2>&1) || { echo "$out" >&2; fail "fsck of $1 not clean"; }
}

chunk_free() {  # free chunks of a mount, from statfs
  stat -f -c %f "$1"
}
