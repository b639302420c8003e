# Shared by the rbd end-to-end tests, sourced after tests/e2e/lib.sh: the cluster (the ctest
# fixture's, from VLUNFS_RBD_CEPH_CONF, or one of the test's own when run alone), images named
# for the test, Ceph users, and cleanup that unmounts and stops daemons before the cluster goes.
RBD_SCRIPTS=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
RBD_POOL=vlunfs
RBD_OWN_CLUSTER=""
RBD_IMAGES=()
CEPH_CONF=""

rbd_cleanup() {
  # Daemons first, while the cluster still answers their last checkpoint.
  grep -F " $WORK" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
    umount "$(printf '%b' "$m")" 2>/dev/null || umount -l "$(printf '%b' "$m")" 2>/dev/null
  done
  for pid in "${DAEMON_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  for image in "${RBD_IMAGES[@]}"; do
    timeout 30 rbd -c "$CEPH_CONF" rm "$RBD_POOL/$image" >/dev/null 2>&1
  done
  [ -n "$RBD_OWN_CLUSTER" ] && bash "$RBD_SCRIPTS/stop.sh" "$RBD_OWN_CLUSTER"
}
CLEANUP_HOOKS+=(rbd_cleanup)

if [ -n "${VLUNFS_RBD_CEPH_CONF:-}" ]; then
  CEPH_CONF=$VLUNFS_RBD_CEPH_CONF
  [ -r "$CEPH_CONF" ] || fail "VLUNFS_RBD_CEPH_CONF=$CEPH_CONF: no such cluster (did rbd.cluster_start run?)"
else
  RBD_OWN_CLUSTER=$WORK/cluster
  CEPH_CONF=$(bash "$RBD_SCRIPTS/start.sh" "$RBD_OWN_CLUSTER") || fail "cannot start a Ceph cluster"
fi
CEPH_OPTS="ceph_conf=$CEPH_CONF"

# rbd_image SUFFIX: a name for an image of this test (removed at cleanup); prints rbd:POOL/IMAGE.
rbd_image() {
  local image="$TEST_NAME-$1-$$"
  RBD_IMAGES+=("$image")
  echo "rbd:$RBD_POOL/$image"
}

# rbd_user NAME: a Ceph user client.NAME-PID with the caps docs/rbd.md asks for (deleted at
# cleanup); sets USER_OPTS to the -o options that make a program that user.
rbd_user() {
  local name="$1-$$"
  local conf="$WORK/ceph-$name.conf"
  ceph -c "$CEPH_CONF" auth get-or-create "client.$name" mon 'profile rbd' osd "profile rbd pool=$RBD_POOL" \
    -o "$WORK/$name.keyring" >/dev/null
  CLEANUP_HOOKS+=("ceph -c '$CEPH_CONF' auth del 'client.$name' >/dev/null 2>&1")
  sed "s|^keyring = .*|keyring = $WORK/$name.keyring|" "$CEPH_CONF" > "$conf"
  USER_OPTS="ceph_conf=$conf,ceph_id=$name"
}

# rbd_formatted_pool: POOL becomes a new image of this test, formatted (1 GiB, 4 MiB chunks: one
# object each).
rbd_formatted_pool() {
  POOL=$(rbd_image pool)
  "$MKFS" -q --size 1G --chunk-shift 10 -o "$CEPH_OPTS" "$POOL" || fail "mkfs.vlunfs $POOL"
}

# rbd_used IMAGE: the bytes the cluster holds for it (rbd du, whole objects).
rbd_used() {
  local spec=${1#rbd:}
  rbd -c "$CEPH_CONF" du "$spec" --format json | sed -n 's/.*"used_size":\([0-9]*\).*/\1/p' | head -n 1
}

# rbd_wait_unlocked IMAGE: until nobody holds its lock (a daemon after umount), at most 20 s.
rbd_wait_unlocked() {
  local spec=${1#rbd:}
  for _ in $(seq 200); do
    [ -z "$(rbd -c "$CEPH_CONF" lock ls "$spec" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  fail "$1 is still locked 20 s after its unmount"
}

# rbd_osd_stop / rbd_osd_start: the cluster's only OSD goes away (a clean stop, so the monitor
# marks it down at once) and comes back with its objects (filestore).
rbd_osd_stop() {
  local dir pid
  dir=$(dirname "$CEPH_CONF")
  pid=$(cat "$dir/run/osd.0.pid")
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  fail "the OSD did not stop"
}
rbd_osd_start() {
  local dir
  dir=$(dirname "$CEPH_CONF")
  ceph-osd -c "$CEPH_CONF" -i 0 2>>"$dir/log/osd-start.log" || fail "the OSD did not start again"
}
