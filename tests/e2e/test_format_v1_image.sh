#!/usr/bin/env bash
# An image in format version 1, made by the build before format version 2 (tests/fixtures/README.md
# says how): vlunctl info and fsck read it as it is; it mounts with its data and its shares, the
# share reserve derived from its chunk maps (thick writes inside the size succeed with the pool
# full); the mount rewrites it as the current version (3) and fsck stays clean.
source "$(dirname "$0")/lib.sh" "$1"

fixtures=$(cd "$(dirname "$0")/../fixtures" && pwd)
img=$WORK/v1.img
mnt=$WORK/mnt
gzip -dc "$fixtures/format-v1.img.gz" > "$img"
shared_sum=de54b04bff3fc9dea2e3891ecc93d1b0dbeb14a70d65153cccba1390afa19979

log "read as version 1"
"$VLUNCTL" info -rn "$img" | grep -q "^format_version 1$" || fail "vlunctl info: $("$VLUNCTL" info "$img")"
"$VLUNCTL" info -rn "$img" | grep -q "^reserved_chunks 4$" || fail "vlunctl info reserve: $("$VLUNCTL" info "$img")"
fsck_clean "$img"
"$VLUNCTL" info -rn "$img" | grep -q "^format_version 1$" || fail "fsck rewrote the version"

log "mounted: data, kinds, shares and the reserve derived from the version 1 maps"
mount_fs "$img" "$mnt"
for f in thick clone snap; do expect_eq "$(sha256sum < "$mnt/$f" | cut -d' ' -f1)" "$shared_sum" "$f"; done
expect_eq "$(sha256sum < "$mnt/thin" | cut -d' ' -f1)" b5013d070e1d36759370b6fa0d88778efe4bf9165137db78867a6732c6190758 "thin"
expect_eq "$(cat "$mnt/dir/small")" hello "dir/small"
expect_eq "$(readlink "$mnt/dir/link")" ../thick "dir/link"
# Raw rows, tab-separated, the sharing columns as fields 9-14 (kind, mapped, shared, reserved,
# origin, created); a value that is not there is "-".
ls_tab() { "$VLUNCTL" ls -rn -o PATH,INO,SIZE,CONTEXT,HANDLE,CHUNKS,LAST_LBA,PHYSICAL,KIND,MAPPED,SHARED,RESERVED,ORIGIN,CREATED "$mnt" | tr ' ' '\t'; }
ls_out=$(ls_tab)
row() { awk -F'\t' -v p="$1" '$1 == p' <<<"$ls_out"; }
# Kind, mapped, shared, reserved, origin, created: version 1 kept no origin and no creation time.
# Both chunks have three owners, two of them thick: each thick one holds a chunk per shared chunk.
expect_eq "$(row /thick | cut -f9-14)" $'thick\t2\t2\t2\t-\t-' "ls /thick"
expect_eq "$(row /clone | cut -f9-14)" $'thick\t2\t2\t2\t-\t-' "ls /clone"
expect_eq "$(row /snap | cut -f9-14)" $'snapshot\t2\t2\t0\t-\t-' "ls /snap"
expect_eq "$(row /thin | cut -f9,12)" $'thin\t0' "ls /thin"
expect_eq "$("$VLUNCTL" info -rn "$mnt" | awk '$1 == "reserved_chunks" {print $2}')" 4 "reserved chunks"

log "the pool filled, the thick files overwrite their shared chunks in place"
truncate -s $(($(chunk_free "$mnt") * 256))K "$mnt/hog"
expect_eq "$(chunk_free "$mnt")" 0 "free chunks after the fill"
for f in thick clone; do
  dd if=/dev/zero of="$mnt/$f" bs=64K count=8 conv=notrunc,fsync status=none || fail "overwrite of $f"
done
expect_eq "$(sha256sum < "$mnt/snap" | cut -d' ' -f1)" "$shared_sum" "the snapshot after the overwrites"
# A thick clone of the snapshot needs two chunks of reserve, and none is free.
"$VLUNCTL" clone "$mnt/snap" "$mnt/new" >/dev/null 2>&1 && fail "a clone was made with no chunk free for its reserve"
[ ! -e "$mnt/new" ] || fail "the refused clone left a file behind"
rm "$mnt/hog"
"$VLUNCTL" clone "$mnt/thick" "$mnt/new" >/dev/null || fail "vlunctl clone after the rm"
created=$(ls_tab | awk -F'\t' '$1 == "/new" {print $13 " " $14}')
case "$created" in "/thick $(date -u +%Y-)"*) ;; *) fail "ls /new: origin and creation '$created'" ;; esac
umount_fs "$mnt"

log "rewritten as version 3, fsck clean"
"$VLUNCTL" info -rn "$img" | grep -q "^format_version 3$" || fail "not rewritten: $("$VLUNCTL" info "$img")"
fsck_clean "$img"
