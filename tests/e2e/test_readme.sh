#!/usr/bin/env bash
# The README's "Using it" block, taken from the README itself (between its readme-using-it
# markers), runs as a script as written, in a scratch directory (VLUNFS_DIR) with build/ the
# build tree, and leaves nothing mounted behind; so the README and the programs cannot drift.
source "$(dirname "$0")/lib.sh" "$1"
readme=$(cd "$(dirname "$0")/../.." && pwd)/README.md

block=$(awk '/<!-- readme-using-it: begin -->/ {on = 1; next} /<!-- readme-using-it: end -->/ {on = 0}
  on && !/^```/ {print}' "$readme")
[ -n "$block" ] || fail "no readme-using-it block in $readme"
grep -q "build/vlunfs " <<<"$block" || fail "the block does not mount anything: $block"

# build/ is the build tree under test, as it is after scripts/build.sh in a clone.
top=$WORK/clone
mkdir -p "$top"
ln -s "$BUILD" "$top/build"
dir=$WORK/using-it
printf '%s\n' "$block" > "$WORK/using-it.sh"
log "running the README's block ($(wc -l <"$WORK/using-it.sh") lines)"
if ! (cd "$top" && VLUNFS_DIR=$dir bash -e -o pipefail "$WORK/using-it.sh" > "$WORK/out" 2>&1); then
  cat "$WORK/out" >&2
  fail "the README's 'Using it' block failed"
fi
# What it did: the vLUN and its snapshot were there, ext4 in it held the file, and the mounts are gone.
grep -q "vol1" "$WORK/out" || { cat "$WORK/out"; fail "vlunctl ls did not list vol1"; }
grep -q "clean" "$WORK/out" || { cat "$WORK/out"; fail "fsck did not say clean"; }
! grep -qF " $dir" /proc/mounts || fail "the block left mounts behind: $(grep -F " $dir" /proc/mounts)"
fsck_clean "$dir/flash.img"
log "the README links only to files in the repository"
grep -n '\.\./shared\|/work/shared' "$readme" "$(dirname "$readme")"/docs/*.md && fail "links outside the repository"
true
