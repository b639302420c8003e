#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test:
#   1. the normal build: unit tests and end-to-end tests (real FUSE mounts, real tools);
#   2. ThreadSanitizer build: the unit tests (the concurrency tests among them);
#   3. AddressSanitizer + UBSan build: the unit tests and the end-to-end tests (daemons, tools and
#      test helpers all built with the sanitizers; any report from any of them fails the run),
#      except those labelled `slow` (bulk I/O for minutes), which ran once in step 1, and with
#      fewer unmount cycles than step 1 runs. The Ceph RBD tests (label rbd) run once, in step 1:
#      librados and librbd are not built with the sanitizers, whose reports there would be theirs.
# Run as root on Debian 12: sudo scripts/test.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh
modprobe fuse 2>/dev/null || true

echo "== build"
bash scripts/build.sh "$top/build"
echo "== tests (normal build)"
(cd build && ctest --output-on-failure --timeout 900)

echo "== unit tests under ThreadSanitizer"
bash scripts/build.sh "$top/build-tsan" -DVLUNFS_SANITIZE=thread -DVLUNFS_BUILD_BENCH=OFF
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L unit -LE rbd --timeout 900)

echo "== unit and end-to-end tests under AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/build.sh "$top/build-asan" -DVLUNFS_SANITIZE=address,undefined -DVLUNFS_BUILD_BENCH=OFF
# Reports go to files, so that one from a daemon in the background (whose stderr a test may not
# show) still fails the run. Leaks are checked everywhere, in the daemons and tools too.
reports=$(mktemp -d /tmp/vlunfs-sanitizer-reports.XXXXXX)
failed=0
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:log_path=$reports/asan \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan \
  VLUNFS_UNMOUNT_CYCLES=20 ctest --output-on-failure -L 'unit|e2e' -LE 'slow|rbd' --timeout 900) || failed=1
if compgen -G "$reports/*" >/dev/null; then
  cat "$reports"/* >&2
  echo "sanitizer reports above (from $reports)" >&2
  failed=1
fi
[ $failed -eq 0 ] || exit 1
rm -rf "$reports"
