#!/usr/bin/env bash
# The benchmark of issue 5: in one invocation, on one store and one machine,
#   raw         fio on a file in the directory that holds the simulated flash image,
#   passthrough a minimal FUSE pass-through of one backing file in that directory, with vlunfs's
#               FUSE settings (bench/passthrough_one.cc): the cost of FUSE itself,
#   floor       (sequential jobs) the same pass-through with -o discard: writes dropped, reads
#               answered with zeros; what FUSE allows any daemon at best,
#   vlunfs      a vlunfs mount of a simulated flash image in that directory;
#   vlunfs-direct (with --image-direct) the same with -o image_direct (the image opened O_DIRECT);
#   qsd         qemu-storage-daemon's FUSE export of a raw image file in that directory (aio=io_uring,
#               cache.direct=off), and qsd-direct, the same with cache.direct=on (qemu's cache=none),
#               with --image-direct: the FUSE volume exporter to beat (issue 17). Needs
#               /usr/bin/qemu-storage-daemon (Debian: apt-get install qemu-system-common); skipped
#               with a message without it, or with --no-qsd;
# data jobs (bench/fio/jobs.fio) with the page cache cold and, for reads, warm; ext4 in a loop
# device with small files; and vlunfs's metadata: create+unlink, resize to 1 TiB and back, mount
# time with 10,000 and 100,000 files, daemon memory. Prints a table of medians (min-max) and the
# ratios vlunfs/raw, vlunfs/passthrough and vlunfs/qsd, and writes it into bench/RESULTS.md. After
# each run's warm sequential read it records how much of each target's backing file, and of the
# file seen through the mount, is in the page cache (fincore): the bytes a target caches twice.
#
# Run as root (drop_caches, mounts, loop devices):
#   bench/run.sh                     default: 1 GiB files, 5 s per random job, 3 runs (~15-20 min)
#   bench/run.sh --long              2 GiB files, 15 s per random job, 5 runs
#   bench/run.sh --fuse-opts writeback_cache --only data --tag writeback_cache
#                                    the same data jobs with a FUSE option on both FUSE targets
#   bench/run.sh --rbd               vlunfs over Ceph RBD vs rbd-fuse, one local test cluster
#   bench/run.sh --only data --image-direct
#                                    adds the vlunfs -o image_direct and qsd cache.direct=on columns
# Options: --dir DIR (scratch; default /var/tmp/vlunfs-bench), --build DIR (default build-perf,
# a Release build, configured if missing and always rebuilt), --runs N, --size MiB, --runtime S,
# --only data|meta, --no-results, --image-direct, --no-qsd.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
DIR=/var/tmp/vlunfs-bench
BUILD=$top/build-perf
RUNS=3
SIZE_MB=1024
RUNTIME=5
ONLY=all
FUSE_OPTS=""
TAG=default
WRITE_RESULTS=1
IMAGE_DIRECT=0
QSD=1
ARGS="$*"
# --rbd: the data jobs on vlunfs over a Ceph RBD image and on rbd-fuse instead (bench/rbd.sh).
case " $* " in *" --rbd "*) exec bash "$(dirname "$0")/rbd.sh" "$@" ;; esac
while [ $# -gt 0 ]; do
  case $1 in
    --dir) DIR=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --size) SIZE_MB=$2; shift ;;
    --runtime) RUNTIME=$2; shift ;;
    --long) RUNS=5; SIZE_MB=2048; RUNTIME=15 ;;
    --only) ONLY=$2; shift ;;
    --fuse-opts) FUSE_OPTS=$2; shift ;;
    --tag) TAG=$2; shift ;;
    --no-results) WRITE_RESULTS=0 ;;
    --image-direct) IMAGE_DIRECT=1 ;;
    --no-qsd) QSD=0 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: run as root (drop_caches, mounts, loop devices)" >&2; exit 1; }
command -v fio >/dev/null || { echo "run.sh: fio is missing: scripts/install-deps.sh installs it" >&2; exit 1; }
command -v fincore >/dev/null || { echo "run.sh: fincore is missing: it is in util-linux" >&2; exit 1; }
QSD_BIN=$(command -v qemu-storage-daemon || true)
if [ "$QSD" = 1 ] && [ -z "$QSD_BIN" ]; then
  echo "run.sh: qemu-storage-daemon is missing, so the qsd column is left out:" \
       "install qemu-system-common (Debian) for it, or pass --no-qsd to silence this" >&2
  QSD=0
fi

# Always brought up to date with the tree (incremental): a stale binary would measure old code.
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$top" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target vlunfs mkfs.vlunfs passthrough_one fs_ops >/dev/null
VLUNFS=$BUILD/vlunfs
MKFS=$BUILD/mkfs.vlunfs
PT=$BUILD/passthrough_one
FSOPS=$BUILD/fs_ops
JOBS=$top/bench/fio/jobs.fio

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
OUT=$DIR/results.tsv     # job <TAB> target <TAB> run <TAB> value
: >"$OUT"
IMG=$DIR/flash.img
MNT_V=$DIR/mnt-vlunfs
MNT_P=$DIR/mnt-pt
MNT_F=$DIR/mnt-floor
IMG_D=$DIR/flash-direct.img
MNT_VD=$DIR/mnt-vlunfs-direct
EXT4=$DIR/mnt-ext4
mkdir -p "$MNT_V" "$MNT_P" "$MNT_F" "$EXT4" "$MNT_VD"
opt_args=()
[ -n "$FUSE_OPTS" ] && opt_args=(-o "$FUSE_OPTS")

log() { printf '[run.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
LOADS=()
note_load() { LOADS+=("$1: $(cut -d' ' -f1-3 /proc/loadavg)"); }

cleanup() {
  set +e
  mountpoint -q "$EXT4" && umount "$EXT4"
  losetup -a 2>/dev/null | grep -F "$DIR/" | cut -d: -f1 | while read -r dev; do losetup -d "$dev"; done
  for m in "$DIR"/mnt-*; do mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }; done
  stop_qsd
  wait_daemons
  rm -f "$IMG" "$DIR"/*.img "$DIR"/*.dat "$DIR"/raw-big
  rm -rf "$DIR"/meta-raw "$DIR"/mnt-*
}
# qemu-storage-daemon's FUSE exports (mounted on a regular file; SIGTERM alone leaves the mount).
QSD_PIDS=()
stop_qsd() {
  local pid
  for m in "$DIR"/qsd-mnt*; do [ -e "$m" ] && mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }; done
  for pid in "${QSD_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${QSD_PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; done
  QSD_PIDS=()
  rm -f "$DIR"/qsd-mnt* "$DIR"/qsd*.pid
}
# start_qsd NAME CACHE_DIRECT: exports $DIR/NAME.img (raw) on the file $DIR/qsd-mnt-NAME.
start_qsd() {
  local name=$1 direct=$2 mnt=$DIR/qsd-mnt-$1
  : >"$mnt"
  "$QSD_BIN" --blockdev "node-name=file,driver=file,filename=$DIR/$name.img,cache.direct=$direct,aio=io_uring" \
             --blockdev node-name=fmt,driver=raw,file=file \
             --export "type=fuse,id=exp,node-name=fmt,mountpoint=$mnt,writable=on" \
             --pidfile "$DIR/$name.pid" --daemonize 2>>"$DIR/daemon.log" \
    || { echo "run.sh: qemu-storage-daemon did not start (see $DIR/daemon.log)" >&2; exit 1; }
  QSD_PIDS+=("$(cat "$DIR/$name.pid")")
  fs_ready "$mnt"
}
# A daemon finishes its checkpoint after umount returns; the image stays locked until then.
wait_daemons() {
  for _ in $(seq 200); do
    pgrep -f "^($VLUNFS|$PT) " >/dev/null || return 0
    sleep 0.05
  done
}
trap cleanup EXIT

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
fs_ready() {  # fs_ready MOUNTPOINT: wait for a mount to appear
  for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done
  echo "run.sh: $1 did not mount" >&2
  exit 1
}
mount_vlunfs() {  # mount_vlunfs IMAGE MOUNTPOINT [options]: returns once the daemon serves
  local img=$1 mnt=$2
  shift 2
  "$VLUNFS" "$@" "$img" "$mnt" 2>>"$DIR/daemon.log"
}
daemon_pid() { pgrep -f "^$VLUNFS .*$1 " | head -1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
# Targets: the file each data job runs on
target_file() {
  case $1 in
    raw) echo "$DIR/raw.dat" ;;
    passthrough) echo "$MNT_P/file" ;;
    floor) echo "$MNT_F/file" ;;
    vlunfs) echo "$MNT_V/bench" ;;
    vlunfs-direct) echo "$MNT_VD/bench" ;;
    qsd) echo "$DIR/qsd-mnt-qsd" ;;
    qsd-direct) echo "$DIR/qsd-mnt-qsd-direct" ;;
  esac
}
# backing_file TARGET: the file on the store's filesystem that holds the target's bytes.
backing_file() {
  case $1 in
    raw) echo "$DIR/raw.dat" ;;
    passthrough) echo "$DIR/pt-backing.dat" ;;
    vlunfs) echo "$IMG" ;;
    vlunfs-direct) echo "$IMG_D" ;;
    qsd|qsd-direct) echo "$DIR/$1.img" ;;
  esac
}
# The targets of the random jobs, in the table's order (the sequential ones add the floor).
TARGETS=(raw passthrough vlunfs)
[ "$IMAGE_DIRECT" = 1 ] && TARGETS+=(vlunfs-direct)
[ "$QSD" = 1 ] && TARGETS+=(qsd)
[ "$QSD" = 1 ] && [ "$IMAGE_DIRECT" = 1 ] && TARGETS+=(qsd-direct)
cached_mib() { awk -v b="$(fincore --bytes --noheadings --output RES "$1" 2>/dev/null || echo 0)" 'BEGIN {printf "%.0f\n", b / 1048576}'; }
# note_page_cache TARGET RUN, right after the target's warm read (every job starts with the caches
# dropped): how much of its backing file, and of the file as its mount shows it, is cached.
note_page_cache() {
  local t=$1 run=$2
  [ -n "$(backing_file "$t")" ] || return 0
  printf '%s\t%s\t%s\t%s\n' "page cache: backing file after seq-read (warm) (MiB)" "$t" "$run" "$(cached_mib "$(backing_file "$t")")" >>"$OUT"
  [ "$t" = raw ] && return 0
  printf '%s\t%s\t%s\t%s\n' "page cache: file in the mount after seq-read (warm) (MiB)" "$t" "$run" "$(cached_mib "$(target_file "$t")")" >>"$OUT"
}

setup_targets() {
  rm -f "$IMG" "$IMG_D" "$DIR/raw.dat" "$DIR/pt-backing.dat" "$DIR/floor-backing.dat" "$DIR"/qsd*.img
  # 1 TiB of chunks for the resize test, the bench file and the pool's zero chunk; sparse.
  "$MKFS" --size 1040G "$IMG" >/dev/null
  mount_vlunfs "$IMG" "$MNT_V" "${opt_args[@]}"
  if [ "$IMAGE_DIRECT" = 1 ]; then
    "$MKFS" --size 1040G "$IMG_D" >/dev/null
    mount_vlunfs "$IMG_D" "$MNT_VD" -o "image_direct${FUSE_OPTS:+,$FUSE_OPTS}"
    truncate -s ${SIZE_MB}M "$MNT_VD/bench"
  fi
  if [ "$QSD" = 1 ]; then
    truncate -s ${SIZE_MB}M "$DIR/qsd.img"
    start_qsd qsd off
    if [ "$IMAGE_DIRECT" = 1 ]; then
      truncate -s ${SIZE_MB}M "$DIR/qsd-direct.img"
      start_qsd qsd-direct on
    fi
  fi
  truncate -s ${SIZE_MB}M "$DIR/pt-backing.dat" "$DIR/raw.dat" "$DIR/floor-backing.dat"
  "$PT" "${opt_args[@]}" "$DIR/pt-backing.dat" "$MNT_P"
  fs_ready "$MNT_P"
  "$PT" "${opt_args[@]}" -o discard "$DIR/floor-backing.dat" "$MNT_F"
  fs_ready "$MNT_F"
  truncate -s ${SIZE_MB}M "$MNT_V/bench"
  for t in "${TARGETS[@]}"; do
    # Every timed write is an overwrite of written blocks, on every target alike.
    BENCH_FILE=$(target_file $t) BENCH_SIZE=${SIZE_MB}M BENCH_RUNTIME=$RUNTIME \
      fio --minimal --section=seq-write "$JOBS" >/dev/null
  done
}

# fio_value TARGET SECTION: MiB/s for sequential jobs, IOPS for random ones (fio terse v3 fields:
# 7/8 read KiB/s and IOPS, 48/49 write KiB/s and IOPS).
fio_value() {
  local file=$1 section=$2 line
  line=$(BENCH_FILE=$file BENCH_SIZE=${SIZE_MB}M BENCH_RUNTIME=$RUNTIME fio --minimal --section="$section" "$JOBS")
  case $section in
    seq-read) echo "$line" | awk -F';' '{printf "%.0f\n", $7 / 1024}' ;;
    seq-write) echo "$line" | awk -F';' '{printf "%.0f\n", $48 / 1024}' ;;
    randread*) echo "$line" | awk -F';' '{print $8}' ;;
    randwrite*) echo "$line" | awk -F';' '{print $49}' ;;
  esac
}

DATA_JOBS=(seq-write seq-read:cold seq-read:warm
           randread-1j:cold randread-1j:warm randread-2j:cold randread-2j:warm
           randread-qd32:cold randread-qd32:warm
           randwrite-1j:cold randwrite-2j:cold randwrite-qd32:cold
           randwrite-fsync:cold randwrite-16k-fdatasync:cold)

# An untimed write of a file's size with its fsync, before each run: after the random writes that
# end a run, the virtio disk's host is still flushing, and a first timed write would pay for it
# (the raw store's seq-write fell from ~3000 to 446 and 402 MiB/s in runs 2 and 3 at 07:17).
settle_disk() {
  drop_caches
  dd if=/dev/zero of="$DIR/settle.dat" bs=1M count="$SIZE_MB" conv=fsync status=none
  rm -f "$DIR/settle.dat"
  sync
}

run_data() {
  log "data jobs: ${SIZE_MB} MiB files, ${RUNTIME} s per random job, $RUNS runs, FUSE options '${FUSE_OPTS:-none}', targets ${TARGETS[*]}"
  setup_targets
  for run in $(seq "$RUNS"); do
    settle_disk
    note_load "data run $run start"
    for spec in "${DATA_JOBS[@]}"; do
      local section=${spec%%:*} state=cold
      [ "$spec" != "$section" ] && state=${spec#*:}
      local targets=("${TARGETS[@]}")
      case $section in seq-*) targets=(raw floor "${TARGETS[@]:1}") ;; esac
      # Each run starts with another target, so that what a job leaves behind (the disk's flush,
      # the load) does not always fall on the same target of the next.
      local k=$(( (run - 1) % ${#targets[@]} ))
      targets=("${targets[@]:k}" "${targets[@]:0:k}")
      for t in "${targets[@]}"; do
        local f
        f=$(target_file $t)
        drop_caches
        [ "$state" = warm ] && cat "$f" >/dev/null
        v=$(fio_value "$f" "$section")
        printf '%s\t%s\t%s\t%s\n' "$section ($state)" "$t" "$run" "$v" >>"$OUT"
        log "run $run $section ($state) $t: $v"
        [ "$spec" = seq-read:warm ] && note_page_cache "$t" "$run"
      done
    done
  done
  note_load "data end"
  ext4_small_files
  # Memory after the data jobs, with every serving thread started.
  V_RSS_DATA=$(rss_kib "$(daemon_pid "$IMG")")
  umount "$MNT_P" "$MNT_F" "$MNT_V"
  [ "$IMAGE_DIRECT" = 1 ] && umount "$MNT_VD"
  stop_qsd
  wait_daemons
}

# ext4 in a loop device on each target's file: 10,000 files of 4 KiB in 100 directories written by
# 2 threads and made durable (syncfs), then read back with the cache cold.
ext4_small_files() {
  local n=10000
  for run in $(seq "$RUNS"); do
    note_load "ext4 run $run start"
    for t in "${TARGETS[@]}"; do
      local f
      f=$(target_file $t)
      mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$f"
      mount -o loop "$f" "$EXT4"
      v=$("$FSOPS" smallfiles-write "$EXT4" $n 4096 2)
      printf '%s\t%s\t%s\t%s\n' "ext4: write 4 KiB files + syncfs (files/s)" $t "$run" "$v" >>"$OUT"
      umount "$EXT4"
      drop_caches
      mount -o loop "$f" "$EXT4"
      v2=$("$FSOPS" smallfiles-read "$EXT4" $n 2)
      printf '%s\t%s\t%s\t%s\n' "ext4: read 4 KiB files, cold (files/s)" $t "$run" "$v2" >>"$OUT"
      umount "$EXT4"
      log "run $run ext4 small files $t: write $v/s read $v2/s"
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Metadata (vlunfs; the raw directory for reference, which promises no durability)
run_meta() {
  log "metadata: create+unlink, resize, mount time, memory"
  [ -e "$IMG" ] || "$MKFS" --size 1040G "$IMG" >/dev/null
  mount_vlunfs "$IMG" "$MNT_V"
  local pid
  pid=$(daemon_pid "$IMG")
  mkdir -p "$DIR/meta-raw" "$MNT_V/meta"
  for run in $(seq "$RUNS"); do
    note_load "meta run $run start"
    for threads in 1 8; do
      read -r c u p < <("$FSOPS" create-unlink "$MNT_V/meta" 10000 $threads)
      local vp=$p
      printf '%s\t%s\t%s\t%s\n' "create+unlink 10,000, $threads thread(s) (pairs/s)" vlunfs "$run" "$p" >>"$OUT"
      printf '%s\t%s\t%s\t%s\n' "  creates/s, $threads thread(s)" vlunfs "$run" "$c" >>"$OUT"
      printf '%s\t%s\t%s\t%s\n' "  unlinks/s, $threads thread(s)" vlunfs "$run" "$u" >>"$OUT"
      read -r c u p < <("$FSOPS" create-unlink "$DIR/meta-raw" 10000 $threads)
      printf '%s\t%s\t%s\t%s\n' "create+unlink 10,000, $threads thread(s) (pairs/s)" raw "$run" "$p" >>"$OUT"
      printf '%s\t%s\t%s\t%s\n' "  creates/s, $threads thread(s)" raw "$run" "$c" >>"$OUT"
      printf '%s\t%s\t%s\t%s\n' "  unlinks/s, $threads thread(s)" raw "$run" "$u" >>"$OUT"
      log "run $run create+unlink $threads thread(s): vlunfs $vp pairs/s"
    done
    # 1 TiB = 4096 chunks of 256 MiB, and back to 0.
    local rss0 rss1
    rss0=$(rss_kib "$pid")
    read -r up down < <("$FSOPS" resize "$MNT_V/big" 1099511627776 0 | paste -sd' ')
    rm -f "$MNT_V/big"
    printf '%s\t%s\t%s\t%s\n' "resize 0 -> 1 TiB (µs)" vlunfs "$run" "$up" >>"$OUT"
    printf '%s\t%s\t%s\t%s\n' "resize 1 TiB -> 0 (µs)" vlunfs "$run" "$down" >>"$OUT"
    read -r up down < <("$FSOPS" resize "$DIR/raw-big" 1099511627776 0 | paste -sd' ')
    rm -f "$DIR/raw-big"
    printf '%s\t%s\t%s\t%s\n' "resize 0 -> 1 TiB (µs)" raw "$run" "$up" >>"$OUT"
    printf '%s\t%s\t%s\t%s\n' "resize 1 TiB -> 0 (µs)" raw "$run" "$down" >>"$OUT"
    log "run $run resize: raw up $up µs"
  done
  # Memory per chunk: a 1 TiB vLUN held open; measured on a fresh mount so nothing transient counts.
  umount "$MNT_V"; wait_daemons
  mount_vlunfs "$IMG" "$MNT_V"
  pid=$(daemon_pid "$IMG")
  V_RSS_EMPTY=$(rss_kib "$pid")
  truncate -s 1T "$MNT_V/big"
  umount "$MNT_V"; wait_daemons
  mount_vlunfs "$IMG" "$MNT_V"
  pid=$(daemon_pid "$IMG")
  V_RSS_1T=$(rss_kib "$pid")
  rm -f "$MNT_V/big"
  umount "$MNT_V"; wait_daemons
  rmdir "$DIR/meta-raw"

  # Mount time and memory with 10,000 and 100,000 files (each a vLUN, empty).
  for n in 10000 100000; do
    local img=$DIR/files-$n.img
    "$MKFS" --size 64G "$img" >/dev/null
    mount_vlunfs "$img" "$MNT_V"
    "$FSOPS" mkfiles "$MNT_V" $n 8 >/dev/null
    umount "$MNT_V"; wait_daemons
    for run in $(seq "$RUNS"); do
      drop_caches
      local t0 t1
      t0=$(date +%s%N)
      mount_vlunfs "$img" "$MNT_V"
      t1=$(date +%s%N)
      pid=$(daemon_pid "$img")
      printf '%s\t%s\t%s\t%s\n' "mount with $n files, cache cold (ms)" vlunfs "$run" $(((t1 - t0) / 1000000)) >>"$OUT"
      printf '%s\t%s\t%s\t%s\n' "daemon RSS with $n files (MiB)" vlunfs "$run" $(($(rss_kib "$pid") / 1024)) >>"$OUT"
      [ $n = 100000 ] && V_RSS_100K=$(rss_kib "$pid")
      umount "$MNT_V"; wait_daemons
    done
    rm -f "$img"
  done
  # The same mount with no files, for the per-file figure.
  "$MKFS" --size 64G "$DIR/files-0.img" >/dev/null
  mount_vlunfs "$DIR/files-0.img" "$MNT_V"
  V_RSS_NOFILES=$(rss_kib "$(daemon_pid "$DIR/files-0.img")")
  umount "$MNT_V"; wait_daemons
  rm -f "$DIR/files-0.img"
}

# ---------------------------------------------------------------------------------------------
# Report
median_of() { sort -n | awk '{v[NR]=$1} END {if (NR == 0) exit; m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%s %s %s\n", m, v[1], v[NR]}'; }
cell() {  # cell JOB TARGET -> "median (min–max)"
  local s
  s=$(awk -F'\t' -v j="$1" -v t="$2" '$1 == j && $2 == t {print $4}' "$OUT" | median_of)
  [ -z "$s" ] && { echo "–"; return; }
  set -- $s
  printf "%s (%s–%s)" "$(fmt "$1")" "$(fmt "$2")" "$(fmt "$3")"
}
fmt() { awk -v v="$1" 'BEGIN { if (v >= 100000) printf "%.0fk", v / 1000; else if (v >= 100) printf "%.0f", v; else printf "%.3g", v }'; }
median_raw() { awk -F'\t' -v j="$1" -v t="$2" '$1 == j && $2 == t {print $4}' "$OUT" | median_of | cut -d' ' -f1; }
ratio() {  # ratio JOB DENOMINATOR [NUMERATOR, default vlunfs]
  local a b
  a=$(median_raw "$1" "${3:-vlunfs}")
  b=$(median_raw "$1" "$2")
  [ -z "$a" ] || [ -z "$b" ] && { echo "–"; return; }
  awk -v a="$a" -v b="$b" 'BEGIN { if (b == 0) print "–"; else printf "%.2f", a / b }'
}

column_name() {
  case $1 in
    floor) echo "FUSE floor" ;;
    passthrough) echo "pass-through" ;;
    vlunfs-direct) echo "vlunfs image_direct" ;;
    qsd) echo "qsd" ;;
    qsd-direct) echo "qsd direct" ;;
    *) echo "$1" ;;
  esac
}

report() {
  local jobs
  mapfile -t jobs < <(cut -f1 "$OUT" | awk '!seen[$0]++')
  # Columns: every target measured, then the ratios; "num/den" pairs, numerator first.
  local cols=(raw floor passthrough vlunfs) ratios=(vlunfs/raw floor/raw vlunfs/passthrough) t
  [ "$(awk -F'\t' '$2 == "vlunfs-direct"' "$OUT" | head -1)" ] && cols+=(vlunfs-direct) ratios+=(vlunfs-direct/vlunfs)
  [ "$(awk -F'\t' '$2 == "qsd"' "$OUT" | head -1)" ] && cols+=(qsd) ratios+=(vlunfs/qsd)
  [ "$(awk -F'\t' '$2 == "qsd-direct"' "$OUT" | head -1)" ] && cols+=(qsd-direct) ratios+=(vlunfs-direct/qsd-direct)
  {
    local header="| job" rule="|---"
    for t in "${cols[@]}"; do header+=" | $(column_name "$t")"; rule+="|---"; done
    for t in "${ratios[@]}"; do header+=" | $(column_name "${t%/*}")/$(column_name "${t#*/}")"; rule+="|---"; done
    echo "$header |"
    echo "$rule|"
    for j in "${jobs[@]}"; do
      local row="| $j"
      for t in "${cols[@]}"; do row+=" | $(cell "$j" "$t")"; done
      for t in "${ratios[@]}"; do row+=" | $(ratio "$j" "${t#*/}" "${t%/*}")"; done
      echo "$row |"
    done
  } >"$DIR/table.md"
  {
    echo "Units: sequential jobs MiB/s, random jobs IOPS, others as named; medians of $RUNS runs (min–max)."
    echo "FUSE options on the FUSE targets: \`${FUSE_OPTS:-(defaults)}\`. ${SIZE_MB} MiB files, ${RUNTIME} s per random job."
    echo "vlunfs image_direct: \`vlunfs -o image_direct\` (the image opened with O_DIRECT). qsd: \`qemu-storage-daemon\`" \
         "$([ -n "$QSD_BIN" ] && "$QSD_BIN" --version | head -1 | sed 's/^qemu-storage-daemon version //')," \
         "FUSE export (type=fuse, writable=on; it opens its file with direct_io, so nothing is cached in the mount)" \
         "of a raw image file (driver=file, aio=io_uring): qsd with cache.direct=off (the image's page cache serves repeats)," \
         "qsd direct with cache.direct=on (qemu's cache=none). nbdfuse, the other FUSE exporter, is not measured (Debian 12 ships it in libnbd-bin, not as a package of its own; it needs an NBD server such as qemu-nbd or nbdkit)."
    echo
    cat "$DIR/table.md"
    if [ -n "${V_RSS_EMPTY:-}" ]; then
      echo
      echo "Daemon memory (VmRSS): empty 1040 GiB image $((V_RSS_EMPTY / 1024)) MiB; with a 1 TiB vLUN (4096 chunks) $((V_RSS_1T / 1024)) MiB" \
           "= $(( (V_RSS_1T - V_RSS_EMPTY) * 1024 / 4096 )) bytes per chunk; 64 GiB image with no files $((V_RSS_NOFILES / 1024)) MiB," \
           "with 100,000 files $((V_RSS_100K / 1024)) MiB = $(( (V_RSS_100K - V_RSS_NOFILES) * 1024 / 100000 )) bytes per file."
    fi
    [ -n "${V_RSS_DATA:-}" ] && echo && echo "Daemon RSS after the data jobs (all serving threads started): $((V_RSS_DATA / 1024)) MiB."
    echo
    echo "Load average (1, 5, 15 min) during the run:"
    for l in "${LOADS[@]}"; do echo "- $l"; done
  } >"$DIR/report.md"
  cat "$DIR/report.md"
}

machine() {
  local fsdev fstype
  fsdev=$(df --output=source "$DIR" | tail -1)
  fstype=$(df --output=fstype "$DIR" | tail -1)
  echo "| | |"
  echo "|---|---|"
  echo "| Date | $(date -u '+%Y-%m-%d %H:%M UTC') (started $START) |"
  echo "| CPU | $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs |"
  echo "| Memory | $(free -g | awk '/^Mem/ {print $2}') GiB |"
  echo "| Kernel | $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME") |"
  echo "| Store | $DIR on $fstype ($fsdev), read_ahead_kb $(cat /sys/block/"$(basename "$fsdev")"/queue/read_ahead_kb 2>/dev/null || echo ?) |"
  echo "| Software | $(fio --version), libfuse $(pkg-config --modversion fuse3), $(g++ --version | head -1) |"
  echo "| Source | $(git -C "$top" rev-parse --short HEAD) + working tree ($(git -C "$top" status --short | wc -l) files changed) |"
}

write_results() {
  local results=$top/bench/RESULTS.md begin="<!-- bench/run.sh $TAG: begin -->" end="<!-- bench/run.sh $TAG: end -->"
  {
    echo "$begin"
    echo "#### Run \`$TAG\` (bench/run.sh $ARGS)"
    echo
    machine
    echo
    cat "$DIR/report.md"
    echo "$end"
  } >"$DIR/section.md"
  if grep -qF "$begin" "$results"; then
    awk -v b="$begin" -v e="$end" -v f="$DIR/section.md" '
      $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
      $0 == e { skip = 0; next }
      !skip' "$results" >"$DIR/RESULTS.new"
    cat "$DIR/RESULTS.new" >"$results"
  else
    { echo; cat "$DIR/section.md"; } >>"$results"
  fi
  log "wrote the $TAG section of $results"
}

START=$(date -u '+%H:%M')
note_load "start"
case $ONLY in
  all) run_data; run_meta ;;
  data) run_data ;;
  meta) run_meta ;;
  *) echo "run.sh: --only data|meta" >&2; exit 2 ;;
esac
note_load "end"
report
[ "$WRITE_RESULTS" = 1 ] && write_results
exit 0
