#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test:
#   1. the normal build: unit tests and end-to-end tests (real FUSE mounts, real tools);
#   2. ThreadSanitizer build: the unit tests (the concurrency tests among them);
#   3. AddressSanitizer + UBSan build: the unit tests.
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
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L unit --timeout 900)

echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/build.sh "$top/build-asan" -DVLUNFS_SANITIZE=address,undefined -DVLUNFS_BUILD_BENCH=OFF
(cd build-asan && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --output-on-failure -L unit --timeout 900)
