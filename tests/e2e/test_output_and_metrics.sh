#!/usr/bin/env bash
# Issue 15, the output half. vlunctl for scripts: raw rows keep any name on one row (\xHH),
# --json parses and follows docs/vlunctl-json.md (ls, info, stats on a mount; info on an image,
# with the same fields), chunk lists are ranges. Logs: -o log=FILE gets the mount's lines,
# -o loglevel= filters them, stderr gets them where there is no syslog, and a normal mount says
# nothing alarming. Metrics: vlunctl stats and GET /metrics (-o metrics=) move with I/O, bad
# requests are refused, and the endpoint goes away with the unmount.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
make_image "$img" 4G
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mount_fs "$img" "$mnt" -o "log=$WORK/vlunfs.log,metrics=127.0.0.1:$port"
url=http://127.0.0.1:$port/metrics

log "-o log=FILE has the mount's lines; nothing alarming at the default level"
grep -q " info: mounted $img on $(realpath "$mnt")" "$WORK/vlunfs.log" || fail "no mount line in the log file: $(cat "$WORK/vlunfs.log")"
grep -q " info: serving metrics on port $port" "$WORK/vlunfs.log" || fail "no metrics line in the log file"
if grep -Eiq "refused|deadlock|cloned 0|warning|error|could" "$WORK/vlunfs.log" "$WORK/daemon.log"; then
  fail "alarming lines on a normal mount: $(cat "$WORK/vlunfs.log" "$WORK/daemon.log")"
fi
if [ ! -S /dev/log ]; then
  grep -q "^vlunfs: mounted $img" "$WORK/daemon.log" || fail "no syslog here, yet -f's stderr lacks the mount line"
fi

log "vlunctl ls -r: a name with a tab and a newline stays on one row"
python3 -c 'import os, sys; f = open(os.path.join(sys.argv[1], "odd\tname\nx"), "w"); f.truncate(1 << 20)' "$mnt"
truncate -s 1G "$mnt/data"
rows=$("$VLUNCTL" ls -rn -o PATH "$mnt")
expect_eq "$(wc -l <<<"$rows")" 2 "rows of ls -rn -o PATH (two files): '$rows'"
grep -qxF '/odd\x09name\x0ax' <<<"$rows" || fail "the odd name is not escaped on its row: '$rows'"
grep -qxF '/data' <<<"$rows" || fail "/data missing from ls -r: '$rows'"
"$VLUNCTL" ls -o NOSUCH "$mnt" >/dev/null 2>&1 && fail "an unknown column was accepted"

log "dd through the data path"
before=$(curl -sf "$url") || fail "GET /metrics before I/O"
dd if=/dev/urandom of="$mnt/data" bs=1M count=8 oflag=direct conv=notrunc,fsync status=none || fail "dd write"
dd if="$mnt/data" of=/dev/null bs=1M count=8 iflag=direct status=none || fail "dd read"
after=$(curl -sf "$url") || fail "GET /metrics after I/O"
sample() { awk -v n="$1" '$1 == n {print $2}' <<<"$2"; }
for op in write read; do
  b=$(sample "vlunfs_bytes_total{op=\"$op\"}" "$before")
  a=$(sample "vlunfs_bytes_total{op=\"$op\"}" "$after")
  [ -n "$a" ] && [ -n "$b" ] || fail "no vlunfs_bytes_total{op=\"$op\"} in the scrape"
  [ $((a - b)) -ge $((8 << 20)) ] || fail "$op bytes moved by $((a - b)), not 8 MiB"
done
[ "$(sample 'vlunfs_request_duration_seconds_count{op="write"}' "$after")" -gt 0 ] || fail "no write latencies"
grep -q '^vlunfs_afu_commands_total{afu_rc="0x00"} [1-9]' <<<"$after" || fail "no AFU commands counted"
grep -q '^vlunfs_vlun_bytes_total{ino="[0-9]*",path="/data",op="write"} [1-9]' <<<"$after" || fail "no per-vLUN bytes for /data"
grep -q '^# TYPE vlunfs_journal_wait_seconds histogram$' <<<"$after" || fail "no journal histogram"

log "the endpoint refuses what is not GET /metrics"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" 404 "GET /"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url")" 405 "POST /metrics"
answer=$(python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
PY
)
expect_eq "$answer" "HTTP/1.1 400 Bad Request" "garbage request"

log "vlunctl --json: ls, stats, info on the mount, checked against the schema"
"$VLUNCTL" snapshot "$mnt/data" "$mnt/data.snap" >/dev/null || fail "snapshot"
dd if=/dev/zero of="$mnt/data" bs=4k count=1 oflag=direct conv=notrunc,fsync status=none || fail "write to a shared chunk"
"$VLUNCTL" ls --json "$mnt" >"$WORK/ls.json" || fail "ls --json"
"$VLUNCTL" stats --json "$mnt" >"$WORK/stats.json" || fail "stats --json"
"$VLUNCTL" info -J "$mnt" >"$WORK/info-mount.json" || fail "info --json on the mount"
python3 - "$WORK" <<'PY' || fail "the JSON does not follow docs/vlunctl-json.md"
import json, re, sys
work = sys.argv[1]
def load(name, command):
    d = json.load(open(f"{work}/{name}"))
    assert d["schema"] == 1 and d["command"] == command, (name, d.get("schema"), d.get("command"))
    return d
def expand(ranges):
    out = []
    for item in filter(None, ranges.split(",")):
        first, _, count = item.partition("x")
        out += range(int(first), int(first) + int(count or 1))
    return out
ls = load("ls.json", "ls")
vluns = {v["path"]: v for v in ls["vluns"]}
assert set(vluns) == {"/odd\tname\nx", "/data", "/data.snap"}, set(vluns)
for v in ls["vluns"]:
    for key, kind in [("ino", int), ("size", int), ("kind", str), ("context", str), ("handle", int), ("chunks", int),
                      ("physical", str), ("mapped", int), ("shared", int), ("reserved", int), ("created", str)]:
        assert isinstance(v[key], kind), (v["path"], key, v[key])
    assert v["last_lba"] is None or isinstance(v["last_lba"], int)
    assert re.fullmatch(r"(\d+(x\d+)?(,\d+(x\d+)?)*)?", v["physical"]), v["physical"]
    assert len(expand(v["physical"])) == v["chunks"], (v["physical"], v["chunks"])
data = vluns["/data"]
assert data["chunks"] == 4 and data["kind"] == "thick", data
assert vluns["/data.snap"]["kind"] == "snapshot" and vluns["/data.snap"]["origin"] == "/data"
assert vluns["/data.snap"]["origin_ino"] == data["ino"]
stats = load("stats.json", "stats")
pool = stats["pool"]
for op in ("read", "write", "fsync"):
    for key in ("requests", "errors", "bytes", "latency_count", "latency_sum_ns", "latency_p50_ns", "latency_p99_ns"):
        assert isinstance(pool[op][key], int), (op, key)
    assert pool[op]["latency_p50_ns"] <= pool[op]["latency_p99_ns"]
assert pool["write"]["bytes"] >= 8 << 20 and pool["read"]["bytes"] >= 8 << 20, pool
assert pool["cow_breaks"] >= 1, pool["cow_breaks"]  # the write to the snapshotted chunk
assert pool["journal"]["records"] > 0 and pool["journal"]["wait_count"] > 0
assert pool["afu_commands"]["0x00"] > 0
for key in ("total_chunks", "mapped_chunks", "shared_chunks", "free_chunks", "reserved_chunks"):
    assert isinstance(pool[key], int), key
assert pool["shared_chunks"] >= 1
sv = {v["path"]: v for v in stats["vluns"]}
assert sv["/data"]["write"]["bytes"] >= 8 << 20 and sv["/data"]["cow_breaks"] >= 1, sv["/data"]
assert sv["/data.snap"]["write"]["requests"] == 0
info = load("info-mount.json", "info")["pool"]
assert info["source"] == "mount" and info["total_chunks"] == pool["total_chunks"]
PY

log "stats as a table: the pool's row and each vLUN's"
table=$("$VLUNCTL" stats -r -o PATH,WRITE_BYTES,COW_BREAKS "$mnt")
head -1 <<<"$table" | grep -qx "PATH WRITE_BYTES COW_BREAKS" || fail "stats heading: $table"
grep -q "^(pool) [0-9]* [1-9]" <<<"$table" || fail "stats pool row: $table"

umount_fs "$mnt"
log "the endpoint is gone with the unmount"
curl -s --max-time 2 "$url" >/dev/null && fail "GET /metrics still answers after the unmount"
grep -q " info: unmounted $(realpath "$mnt")" "$WORK/vlunfs.log" || fail "no unmount line in the log file"

log "info --json on the image: the mount's fields"
"$VLUNCTL" info --json "$img" >"$WORK/info-image.json" || fail "info --json on the image"
python3 - "$WORK" <<'PY' || fail "info on the image and on the mount differ in their fields"
import json, sys
work = sys.argv[1]
mount = json.load(open(f"{work}/info-mount.json"))
image = json.load(open(f"{work}/info-image.json"))
assert image["schema"] == 1 and image["command"] == "info"
assert set(mount["pool"]) == set(image["pool"]), set(mount["pool"]) ^ set(image["pool"])
assert image["pool"]["source"] == "image"
for key in ("total_chunks", "chunk_bytes", "format_version", "block_size", "files", "device_bytes"):
    assert image["pool"][key] == mount["pool"][key], key
PY

log "-o loglevel: debug shows more, error hides the mount line"
mount_fs "$img" "$mnt" -o "log=$WORK/debug.log,loglevel=debug"
umount_fs "$mnt"
grep -q " debug: " "$WORK/debug.log" || fail "loglevel=debug logged no debug line: $(cat "$WORK/debug.log")"
grep -q " debug: " "$WORK/vlunfs.log" && fail "the default level logged debug lines"
mount_fs "$img" "$mnt" -o "log=$WORK/error.log,loglevel=error"
umount_fs "$mnt"
grep -q "mounted" "$WORK/error.log" && fail "loglevel=error logged the info lines"
expect_fail "use error, warn, info or debug" "$VLUNFS" -f -o loglevel=loud "$img" "$mnt"
expect_fail "cannot open the log file" "$VLUNFS" -f -o log=/nonexistent/dir/log "$img" "$mnt"
fsck_clean "$img"
log "ok"
