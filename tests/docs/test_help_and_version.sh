#!/usr/bin/env bash
# Every program answers --help (a usage on stdout) and --version (the project's version, from
# CMakeLists.txt) with exit 0, including the mount and umount helpers, which mount(8) and
# umount(8) run but a user may too. Usage: test_help_and_version.sh BUILD_DIR (no root needed).
set -euo pipefail
BUILD=$(cd "${1:?usage: test_help_and_version.sh BUILD_DIR}" && pwd)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[ -n "$version" ] || { echo "no CMAKE_PROJECT_VERSION in $BUILD/CMakeCache.txt" >&2; exit 1; }
failures=0
fail() { printf '[test_help_and_version] FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }

for prog in vlunfs mkfs.vlunfs vlunctl fsck.vlunfs mount.vlunfs mount.fuse.vlunfs umount.fuse.vlunfs; do
  [ -x "$BUILD/$prog" ] || { fail "$BUILD/$prog is not built"; continue; }
  for flag in --help -h; do
    rc=0
    out=$("$BUILD/$prog" "$flag" 2>/dev/null) || rc=$?
    [ "$rc" -eq 0 ] || fail "$prog $flag exited $rc"
    grep -qi '^usage: ' <<<"$out" || fail "$prog $flag printed no usage line on stdout: '$out'"
  done
  for flag in --version -V; do
    rc=0
    out=$("$BUILD/$prog" "$flag" 2>/dev/null) || rc=$?
    [ "$rc" -eq 0 ] || fail "$prog $flag exited $rc"
    grep -qE "(^| )$prog( |\$)" <<<"$out" || fail "$prog $flag does not name the program: '$out'"
    grep -qE "(^| )${version//./\\.}( |\$)" <<<"$out" || fail "$prog $flag does not say version $version: '$out'"
  done
done
if [ "$failures" -ne 0 ]; then
  echo "[test_help_and_version] FAILED ($failures)" >&2
  exit 1
fi
echo "[test_help_and_version] PASS"
