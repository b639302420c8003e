#!/usr/bin/env bash
# stop.sh DIR: stops the cluster start.sh DIR started (every daemon whose pid file is in DIR/run)
# and removes DIR. KEEP_CLUSTER_DIR=1 keeps the directory (logs) for a look after a failure.
set -uo pipefail
if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: stop.sh DIR" >&2
  exit 2
fi
dir=$(readlink -m "$1")
[ -d "$dir" ] || exit 0
pids=()
for pidfile in "$dir"/run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile" 2>/dev/null)
  # Only a ceph daemon of this cluster: its command line names this directory's ceph.conf.
  if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/ceph.conf"; then
    kill -CONT "$pid" 2>/dev/null  # a test may have paused it
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  fi
done
for _ in $(seq 50); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ "$alive" -eq 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
[ "${KEEP_CLUSTER_DIR:-0}" = 1 ] || rm -rf "$dir"
exit 0
