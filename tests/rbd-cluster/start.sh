#!/usr/bin/env bash
# start.sh DIR: a throwaway Ceph cluster for the rbd tests, entirely inside DIR and on loopback:
# one monitor, one OSD (filestore in DIR/osd, so the OSD survives a restart; or memstore, objects in
# the OSD's memory, with VLUNFS_RBD_OBJECTSTORE=memstore), replica size 1, cephx with a keyring generated here, a pool
# "vlunfs" initialised for RBD. Prints the path of its ceph.conf on success; on any failure it
# stops whatever it started and exits non-zero. Stop it with stop.sh DIR.
#
# Environment: VLUNFS_RBD_POOL (default vlunfs), VLUNFS_RBD_START_TIMEOUT (seconds, default 60).
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: start.sh DIR   (prints DIR/ceph.conf once the cluster serves I/O; stop with stop.sh DIR)" >&2
  exit 2
fi
for tool in ceph-mon ceph-osd ceph-authtool monmaptool ceph rados; do
  command -v "$tool" >/dev/null || { echo "start.sh: $tool is missing (apt-get install ceph-mon ceph-osd ceph-common)" >&2; exit 1; }
done
here=$(dirname "$(readlink -f "$0")")
dir=$(readlink -m "$1")
pool=${VLUNFS_RBD_POOL:-vlunfs}
timeout_s=${VLUNFS_RBD_START_TIMEOUT:-60}
# memstore: fastest, and enough unless a test restarts the OSD (memstore keeps nothing across a
# restart); filestore keeps the objects as files under DIR/osd, so the OSD can be stopped and started.
objectstore=${VLUNFS_RBD_OBJECTSTORE:-filestore}
case "$objectstore" in memstore|filestore) ;; *) echo "start.sh: VLUNFS_RBD_OBJECTSTORE is memstore or filestore" >&2; exit 2 ;; esac
if [ -e "$dir/ceph.conf" ]; then
  echo "start.sh: $dir already holds a cluster (stop.sh $dir first)" >&2
  exit 1
fi
mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log"

started=0
cleanup() {
  [ "$started" -eq 1 ] && return
  echo "start.sh: failed; stopping what was started (logs were in $dir/log)" >&2
  tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true
  bash "$here/stop.sh" "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A free loopback port for the monitor (msgr2); the OSD binds wherever it likes on 127.0.0.1.
port=""
for candidate in $(shuf -i 20000-60000 -n 50); do
  if ! ss -Hltn "sport = :$candidate" | grep -q .; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "start.sh: no free port on 127.0.0.1" >&2; exit 1; }
fsid=$(cat /proc/sys/kernel/random/uuid)

conf=$dir/ceph.conf
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$port]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon/\$name
osd data = $dir/osd/\$name
osd objectstore = $objectstore
memstore device bytes = 8589934592
osd journal = $dir/osd/\$name/journal
osd journal size = 128
osd max write size = 32
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
osd memory target = 939524096
osd max object name len = 256
osd max object namespace len = 64

[client]
# Many clients of one name run at once (daemons, tools, tests): no admin socket for them to
# collide on, and no log of their own.
admin socket =
log file = /dev/null
CONF

ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$dir/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
ceph-mon -c "$conf" -i a 2>>"$dir/log/mon-start.log"

deadline=$((SECONDS + timeout_s))
until timeout 10 ceph -c "$conf" mon stat >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || { echo "start.sh: the monitor did not answer within ${timeout_s}s" >&2; exit 1; }
  sleep 0.3
done

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph -c "$conf" osd create "$osd_uuid")
mkdir -p "$dir/osd/osd.$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/osd-start.log"

until [ "$(timeout 10 ceph -c "$conf" osd stat -f json 2>/dev/null | sed -n 's/.*"num_up_osds":\([0-9]*\).*/\1/p')" = 1 ]; do
  [ $SECONDS -lt $deadline ] || { echo "start.sh: the OSD did not come up within ${timeout_s}s" >&2; exit 1; }
  sleep 0.3
done
ceph -c "$conf" osd pool create "$pool" 8 8 >/dev/null 2>&1
ceph -c "$conf" osd pool application enable "$pool" rbd >/dev/null 2>&1
# Served I/O is the readiness that matters (without a manager the health summary never settles).
until echo ready | timeout 10 rados -c "$conf" -p "$pool" put vlunfs-probe - >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || { echo "start.sh: pool $pool served no write within ${timeout_s}s" >&2; exit 1; }
  sleep 0.3
done
rados -c "$conf" -p "$pool" rm vlunfs-probe >/dev/null 2>&1 || true
started=1
echo "$conf"
