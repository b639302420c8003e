#!/usr/bin/env bash
# The RBD mode of bench/run.sh (run.sh --rbd [options]): the data jobs of bench/fio/jobs.fio on
#   vlunfs     a vlunfs mount of an RBD image (rbd:vlunfs/bench-pool), and
#   rbd-fuse   Ceph's own FUSE client (rbd-fuse), one image exposed as a file,
# against the same throwaway cluster (tests/rbd-cluster/start.sh, on loopback, in --dir). Prints a
# table of medians (min-max) and the ratio vlunfs/rbd-fuse, and appends it to bench/RESULTS.md.
# Options: --dir DIR (default /var/tmp/vlunfs-bench-rbd), --build DIR (default build), --runs N
# (default 3), --size MiB (default 512), --runtime S (default 5), --no-results.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
DIR=/var/tmp/vlunfs-bench-rbd
BUILD=$top/build
RUNS=3
SIZE_MB=512
RUNTIME=5
WRITE_RESULTS=1
while [ $# -gt 0 ]; do
  case $1 in
    --dir) DIR=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --size) SIZE_MB=$2; shift ;;
    --runtime) RUNTIME=$2; shift ;;
    --no-results) WRITE_RESULTS=0 ;;
    --rbd) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "rbd.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "rbd.sh: run as root (drop_caches, mounts)" >&2; exit 1; }
for tool in fio rbd-fuse rbd; do
  command -v $tool >/dev/null || { echo "rbd.sh: $tool is missing: scripts/install-deps.sh installs it" >&2; exit 1; }
done
[ -x "$BUILD/vlunfs" ] || { echo "rbd.sh: no $BUILD/vlunfs; build first (scripts/build.sh $BUILD)" >&2; exit 1; }
JOBS=$top/bench/fio/jobs.fio
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
OUT=$DIR/results.tsv
: >"$OUT"
MNT_V=$DIR/mnt-vlunfs
MNT_R=$DIR/mnt-rbd-fuse
mkdir -p "$MNT_V" "$MNT_R"
log() { printf '[rbd.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

VLUNFS_PID=""
cleanup() {
  set +e
  for m in "$MNT_V" "$MNT_R"; do mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }; done
  [ -n "$VLUNFS_PID" ] && wait "$VLUNFS_PID" 2>/dev/null
  bash "$top/tests/rbd-cluster/stop.sh" "$DIR/cluster"
  rmdir "$MNT_V" "$MNT_R" 2>/dev/null
}
trap cleanup EXIT

log "starting a cluster in $DIR/cluster"
bash "$top/tests/rbd-cluster/stop.sh" "$DIR/cluster"
CONF=$(bash "$top/tests/rbd-cluster/start.sh" "$DIR/cluster")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

"$BUILD/mkfs.vlunfs" -q --size $((SIZE_MB + 1024))M -o "ceph_conf=$CONF" rbd:vlunfs/bench-pool
"$BUILD/vlunfs" -f rbd:vlunfs/bench-pool "$MNT_V" -o "ceph_conf=$CONF" 2>>"$DIR/daemon.log" &
VLUNFS_PID=$!
for _ in $(seq 200); do mountpoint -q "$MNT_V" && break; sleep 0.05; done
mountpoint -q "$MNT_V" || { cat "$DIR/daemon.log" >&2; exit 1; }
truncate -s ${SIZE_MB}M "$MNT_V/bench"
rbd -c "$CONF" create vlunfs/fuse-bench --size ${SIZE_MB}M
rbd-fuse -c "$CONF" -p vlunfs -r fuse-bench "$MNT_R"
for _ in $(seq 200); do [ -e "$MNT_R/fuse-bench" ] && break; sleep 0.05; done

target_file() { case $1 in vlunfs) echo "$MNT_V/bench" ;; rbd-fuse) echo "$MNT_R/fuse-bench" ;; esac; }
fio_value() {  # as bench/run.sh: MiB/s for sequential jobs, IOPS for random ones
  local line
  line=$(BENCH_FILE=$1 BENCH_SIZE=${SIZE_MB}M BENCH_RUNTIME=$RUNTIME fio --minimal --section="$2" "$JOBS")
  case $2 in
    seq-read) echo "$line" | awk -F';' '{printf "%.0f\n", $7 / 1024}' ;;
    seq-write) echo "$line" | awk -F';' '{printf "%.0f\n", $48 / 1024}' ;;
    randread*) echo "$line" | awk -F';' '{print $8}' ;;
    randwrite*) echo "$line" | awk -F';' '{print $49}' ;;
  esac
}
# Every timed write is an overwrite, on both targets alike.
for t in vlunfs rbd-fuse; do
  BENCH_FILE=$(target_file $t) BENCH_SIZE=${SIZE_MB}M BENCH_RUNTIME=$RUNTIME fio --minimal --section=seq-write "$JOBS" >/dev/null
done

DATA_JOBS=(seq-write seq-read randread-1j randread-qd32 randwrite-1j randwrite-qd32)
for run in $(seq "$RUNS"); do
  for section in "${DATA_JOBS[@]}"; do
    targets=(vlunfs rbd-fuse)
    [ $((run % 2)) -eq 0 ] && targets=(rbd-fuse vlunfs)
    for t in "${targets[@]}"; do
      sync; echo 3 >/proc/sys/vm/drop_caches
      v=$(fio_value "$(target_file $t)" "$section")
      printf '%s\t%s\t%s\t%s\n' "$section (cold)" "$t" "$run" "$v" >>"$OUT"
      log "run $run $section $t: $v"
    done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median_of() { sort -n | awk '{v[NR]=$1} END {if (NR == 0) exit; m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%s %s %s\n", m, v[1], v[NR]}'; }
cell() {
  local s
  s=$(awk -F'\t' -v j="$1" -v t="$2" '$1 == j && $2 == t {print $4}' "$OUT" | median_of)
  [ -z "$s" ] && { echo "–"; return; }
  set -- $s
  printf "%s (%s–%s)" "$1" "$2" "$3"
}
ratio() {
  local a b
  a=$(awk -F'\t' -v j="$1" '$1 == j && $2 == "vlunfs" {print $4}' "$OUT" | median_of | cut -d' ' -f1)
  b=$(awk -F'\t' -v j="$1" '$1 == j && $2 == "rbd-fuse" {print $4}' "$OUT" | median_of | cut -d' ' -f1)
  awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0 || a == "") print "–"; else printf "%.2f", a / b }'
}
{
  echo "| job | vlunfs over RBD | rbd-fuse | vlunfs/rbd-fuse |"
  echo "|---|---|---|---|"
  for j in $(cut -f1 "$OUT" | awk '!seen[$0]++' | tr ' ' '~'); do
    j=${j//\~/ }
    echo "| $j | $(cell "$j" vlunfs) | $(cell "$j" rbd-fuse) | $(ratio "$j") |"
  done
} >"$DIR/table.md"
cat "$DIR/table.md"
if [ "$WRITE_RESULTS" = 1 ]; then
  {
    echo
    echo "## RBD: vlunfs over librbd vs Ceph's rbd-fuse ($(date -u +%F), bench/run.sh --rbd)"
    echo
    echo "One throwaway cluster on this machine (tests/rbd-cluster/start.sh: one monitor, one filestore OSD"
    echo "on the local disk, replica size 1, loopback), both clients against it. ${SIZE_MB} MiB files,"
    echo "${RUNTIME} s per random job, medians of $RUNS runs (min–max); sequential MiB/s, random IOPS,"
    echo "page cache dropped before each job. vlunfs in its default build ($(basename "$BUILD"))."
    echo "The machine was busy (2 cores shared by several engineers' builds): load $LOAD_START at the"
    echo "start, $LOAD_END at the end; read the ratios, not the absolute numbers."
    echo
    cat "$DIR/table.md"
  } >>"$top/bench/RESULTS.md"
  log "appended to bench/RESULTS.md"
fi
