#!/usr/bin/env bash
# The bash completion of vlunctl and mkfs.vlunfs (completion/), sourced into bash with
# bash-completion: subcommands and options from the programs' --help, mountpoints of type
# fuse.vlunfs from /proc/self/mounts, files on them, and mkfs.vlunfs's option values.
source "$(dirname "$0")/lib.sh" "$1"
completion=$(cd "$(dirname "$0")/../../completion" && pwd)
[ -f /usr/share/bash-completion/bash_completion ] || fail "bash-completion is not installed (scripts/install-deps.sh)"

img=$WORK/flash.img
mnt=$WORK/mount\ with\ space  # /proc/self/mounts escapes the space as \040
make_image "$img" 2G --chunk-shift 8
mount_fs "$img" "$mnt"
truncate -s 8M "$mnt/vol1" "$mnt/vol2"
mkdir "$mnt/dir"

# complete PROGRAM WORD...: the completions of the last word, one a line, as bash would offer them.
complete_words() {
  local func=$1
  shift
  bash -c '
    source /usr/share/bash-completion/bash_completion
    source "$1/vlunctl"; source "$1/mkfs.vlunfs"
    func=$2; shift 2
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    "$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"
  ' complete "$completion" "$func" "$@" | sort
}

log "vlunctl: subcommands from its --help"
got=$(complete_words _vlunctl "$VLUNCTL" "" | paste -sd' ')
for sub in info ls fsck clone snapshot thin sync; do
  grep -qw "$sub" <<<"$got" || fail "vlunctl <TAB> lacks $sub: $got"
done
expect_eq "$(complete_words _vlunctl "$VLUNCTL" sn | paste -sd' ')" snapshot "vlunctl sn<TAB>"

log "vlunctl: options of a subcommand"
got=$(complete_words _vlunctl "$VLUNCTL" fsck --p | paste -sd' ')
expect_eq "$got" "--preen --progress" "vlunctl fsck --p<TAB>"
expect_eq "$(complete_words _vlunctl "$VLUNCTL" thin --o)" "--off" "vlunctl thin --o<TAB>"

log "vlunctl ls: the vlunfs mountpoints"
got=$(complete_words _vlunctl "$VLUNCTL" ls "")
grep -qxF "$mnt" <<<"$got" || fail "vlunctl ls <TAB> does not offer $mnt: $got"
while read -r m; do
  [ -z "$m" ] && continue
  findmnt -n -t fuse.vlunfs --mountpoint "$m" >/dev/null || fail "vlunctl ls <TAB> offers $m, not a vlunfs mount"
done <<<"$got"

log "vlunctl clone: files on a vlunfs mount"
got=$(complete_words _vlunctl "$VLUNCTL" clone "$mnt/v" | paste -sd'|')
expect_eq "$got" "$mnt/vol1|$mnt/vol2" "vlunctl clone MNT/v<TAB>"
expect_eq "$(complete_words _vlunctl "$VLUNCTL" clone "$mnt/vol1" "$mnt/d")" "$mnt/dir/" "vlunctl clone SRC MNT/d<TAB>"
got=$(complete_words _vlunctl "$VLUNCTL" snapshot "${mnt%space}")
grep -qxF "$mnt/" <<<"$got" || fail "vlunctl snapshot <TAB> does not offer $mnt/: $got"

log "mkfs.vlunfs: options and their values"
expect_eq "$(complete_words _mkfs_vlunfs "$MKFS" --bl)" "--block-size" "mkfs.vlunfs --bl<TAB>"
expect_eq "$(complete_words _mkfs_vlunfs "$MKFS" -b "" | paste -sd' ')" "4096 512" "mkfs.vlunfs -b <TAB>"
expect_eq "$(complete_words _mkfs_vlunfs "$MKFS" --chunk-shift 1 | paste -sd' ')" "10 11 12 13 14 15 16" "mkfs.vlunfs --chunk-shift 1<TAB>"
got=$(complete_words _mkfs_vlunfs "$MKFS" "$WORK/fl")
expect_eq "$got" "$img" "mkfs.vlunfs DIR/fl<TAB>"
umount_fs "$mnt"
