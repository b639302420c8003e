#!/usr/bin/env bash
# Installs every system package vlunfs needs to build, test and demo, on Debian 12 (as root).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it): sudo $0" >&2
  exit 1
fi
packages=(
  build-essential cmake pkg-config
  libfuse3-dev fuse3
  libboost-dev libisal-dev libcli11-dev libblkid-dev libsmartcols-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  e2fsprogs util-linux coreutils fio
  mandoc man-db bash-completion dpkg-dev
  # Ceph RBD as the physical LUN (src/store/rbd/) and its test cluster (tests/rbd-cluster/)
  librbd-dev librados-dev ceph-mon ceph-osd ceph-common rbd-fuse
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
