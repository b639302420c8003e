#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test:
#   1. the normal build: unit tests and end-to-end tests (real FUSE mounts, real tools);
#   2. ThreadSanitizer build: the unit tests (the concurrency tests among them);
#   3. AddressSanitizer + UBSan build: the unit tests and the end-to-end tests (daemons, tools and
#      test helpers all built with the sanitizers; any report from any of them fails the run),
#      except those labelled `slow` (bulk I/O for minutes), which ran once in step 1, and with
#      fewer unmount cycles than step 1 runs. The Ceph RBD tests (label rbd) run once, in step 1:
#      librados and librbd are not built with the sanitizers, whose reports there would be theirs.
# Debug information is line tables only (-g1): enough for every sanitizer report's stack and for
# gdb's backtraces, and it roughly halves the compile time of the large test files under the
# sanitizers (full -g with ASan at -O2 spent up to 10 minutes on one of them). Tests run two at a
# time; the end-to-end tests (RUN_SERIAL) still run alone.
# Run as root on Debian 12: sudo scripts/test.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh
modprobe fuse 2>/dev/null || true

line_tables=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
sanitizer_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DVLUNFS_BUILD_BENCH=OFF)

echo "== build"
bash scripts/build.sh "$top/build" "${line_tables[@]}"
echo "== tests (normal build)"
(cd build && ctest -j2 --output-on-failure --timeout 900)

echo "== unit tests under ThreadSanitizer"
# Only the unit test binaries: nothing else runs in this stage.
VLUNFS_TARGETS=unit_tests bash scripts/build.sh "$top/build-tsan" -DVLUNFS_SANITIZE=thread "${sanitizer_flags[@]}"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest -j2 --output-on-failure -L unit -LE rbd --timeout 900)

echo "== unit and end-to-end tests under AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/build.sh "$top/build-asan" -DVLUNFS_SANITIZE=address,undefined "${sanitizer_flags[@]}"
# Reports go to files, so that one from a daemon in the background (whose stderr a test may not
# show) still fails the run. Leaks are checked everywhere, in the daemons and tools too.
reports=$(mktemp -d /tmp/vlunfs-sanitizer-reports.XXXXXX)
failed=0
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:log_path=$reports/asan \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan \
  VLUNFS_UNMOUNT_CYCLES=20 ctest -j2 --output-on-failure -L 'unit|e2e' -LE 'slow|rbd' --timeout 900) || failed=1
if compgen -G "$reports/*" >/dev/null; then
  cat "$reports"/* >&2
  echo "sanitizer reports above (from $reports)" >&2
  failed=1
fi
[ $failed -eq 0 ] || exit 1
rm -rf "$reports"
