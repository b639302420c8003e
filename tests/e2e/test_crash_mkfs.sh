#!/usr/bin/env bash
# mkfs.vlunfs killed at each of its writes, flushes and hole punches (strace's fault injection
# sends SIGKILL as the system call starts), on a new image and over an existing file system with
# --force: the image is then either mountable (an empty new file system, or the old one with its
# files) or refused with a message, and fsck never crashes: exit 0, or 4 with --repair making it 0
# (a superblock copy not written yet), or a refusal. A second mkfs always works. Without strace,
# mkfs is killed at random moments instead.
source "$(dirname "$0")/lib.sh" "$1"

mnt=$WORK/mnt
mkdir -p "$mnt"
old_image() {  # old_image PATH: a file system holding one file, "old"
  make_image "$1" 4G --chunk-shift 8
  mount_fs "$1" "$mnt"
  echo "the old file system" > "$mnt/old"
  umount_fs "$mnt"
}

# check IMAGE WHAT: the image left by a killed mkfs mounts or is refused with a message.
check() {
  local img=$1 what=$2 rc=0 rrc=0 out mountable=no
  out=$("$VLUNCTL" fsck "$img" 2>&1) || rc=$?
  case $rc in
    0) mountable=yes ;;
    4)  # degraded (a superblock copy not written yet): --repair mends it; or unusable: it says why
      "$VLUNCTL" fsck --repair "$img" >/dev/null 2>&1 || rrc=$?
      if [ $rrc -eq 1 ]; then
        fsck_clean "$img"
        mountable=yes
      else
        case "$out" in *"no usable superblock"*) ;; *) echo "$out" >&2; fail "$what: fsck exit 4, --repair exit $rrc" ;; esac
      fi
      ;;
    8) case "$out" in *"not formatted with vlunfs"*) ;; *) echo "$out" >&2; fail "$what: fsck exit 8" ;; esac ;;
    *) echo "$out" >&2; fail "$what: fsck exit $rc" ;;
  esac
  if [ $mountable = yes ]; then
    mount_fs "$img" "$mnt"
    local names
    names=$(ls -A "$mnt" | tr '\n' ' ')
    case "$names" in
      "") ;;
      "old ") expect_eq "$(cat "$mnt/old")" "the old file system" "$what: the old file system's file" ;;
      *) fail "$what: the image holds neither a new nor the old file system: $names" ;;
    esac
    umount_fs "$mnt"
  else
    out=$("$VLUNFS" -f "$img" "$mnt" 2>&1) && fail "$what: mounted an image that fsck refuses"
    case "$out" in *"cannot mount: "?*) ;; *) fail "$what: refused without a message: $out" ;; esac
  fi
  "$MKFS" --force "$img" >/dev/null || fail "$what: mkfs after the crash failed"
  fsck_clean "$img"
}

points=0
exact=0
if command -v strace >/dev/null; then
  for call in pwrite64 fdatasync fallocate; do
    for when in $(seq 1 8); do
      for over in new old; do
        img=$WORK/$over.img
        rm -f "$img"
        if [ "$over" = old ]; then old_image "$img"; args=(--force "$img"); else args=(--size 4G "$img"); fi
        # (In a command substitution, so that the shell's "Killed" notice goes nowhere.)
        # LeakSanitizer cannot run under ptrace: leaks are checked by the runs without strace.
        rc=$( { ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -o /dev/null -e trace="$call" -e inject="$call:signal=KILL:when=$when" \
          "$MKFS" --chunk-shift 8 "${args[@]}" >/dev/null 2>&1; echo $?; } 2>/dev/null)
        [ $rc -eq 0 ] && continue   # mkfs makes fewer such calls: nothing was killed
        points=$((points + 1))
        exact=$((exact + 1))
        check "$img" "mkfs ($over image) killed at $call #$when"
      done
    done
  done
else
  log "strace is not installed: killing mkfs at random moments instead"
fi
for i in $(seq 1 10); do
  img=$WORK/random.img
  rm -f "$img"
  old_image "$img"
  "$MKFS" --force --chunk-shift 8 "$img" >/dev/null 2>&1 &
  pid=$!
  sleep "0.00$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  points=$((points + 1))
  check "$img" "mkfs killed at a random moment ($i)"
done
log "$points mkfs crash points ($exact at an exact system call, the rest at random moments): every image mountable or refused with a message"
