#!/usr/bin/env bash
# A thick vLUN keeps its promise after it is shared: an ext4 loop-mounted in a thick vLUN, a cp
# of the vLUN (copy_file_range shares its chunks) and a snapshot of it, the pool filled by another
# file; writes inside the ext4 and sync still succeed and the ext4 stays read-write, because the
# pool held back the chunks that breaking the shares needs (docs/format.md, "The share reserve").
# df counts that reserve as used; vlunctl ls and info show kinds, sharing, reserve and origins.
source "$(dirname "$0")/lib.sh" "$1"

img=$WORK/flash.img
mnt=$WORK/mnt
vol=$WORK/ext4
make_image "$img" 8G
mount_fs "$img" "$mnt"
chunk=$(stat -f -c %S "$mnt")
[ "$chunk" = $((256 << 20)) ] || fail "expected 256 MiB chunks, statfs says $chunk"

truncate -s 1G "$mnt/vol"  # thick: 4 chunks, allocated now
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$mnt/vol"
mkdir -p "$vol"
mount -o loop "$mnt/vol" "$vol"
LOOP_MOUNTS+=("$vol")
dd if=/dev/urandom of="$vol/before" bs=1M count=100 status=none
sync

free_before=$(chunk_free "$mnt")
log "cp of the thick vLUN shares its 4 chunks and reserves one chunk per shared chunk"
cp "$mnt/vol" "$mnt/copy"
expect_eq "$(chunk_free "$mnt")" $((free_before - 4)) "statfs free chunks after cp (the reserve counts as used)"
"$VLUNCTL" snapshot "$mnt/vol" "$mnt/snap" >/dev/null || fail "vlunctl snapshot"
[ "$(stat -c %Y "$mnt/snap")" -gt 1000000000 ] || fail "the snapshot's mtime is the epoch: $(stat -c %y "$mnt/snap")"
# Three owners per chunk, two of them thick: two chunks reserved per shared chunk.
expect_eq "$(chunk_free "$mnt")" $((free_before - 8)) "statfs free chunks after the snapshot"
cp "$mnt/vol" "$mnt/copy2"  # four owners, three thick: three per chunk
expect_eq "$(chunk_free "$mnt")" $((free_before - 12)) "statfs free chunks after a second cp"
rm "$mnt/copy2"
expect_eq "$(chunk_free "$mnt")" $((free_before - 8)) "statfs free chunks after its rm (its reserve released)"

log "fill the pool with another file"
avail=$(chunk_free "$mnt")
truncate -s $((avail * 256))M "$mnt/hog"
expect_eq "$(chunk_free "$mnt")" 0 "free chunks after the fill"
expect_fail "No space left on device" truncate -s $(((avail + 1) * 256))M "$mnt/hog"
expect_fail "No space left on device" cp "$mnt/vol" "$mnt/copy2"  # a further share has no reserve
rm -f "$mnt/copy2"

log "writes inside the ext4 break the shares, with the reserved chunks"
dd if=/dev/urandom of="$vol/after" bs=1M count=600 conv=fsync status=none || fail "write inside the ext4"
sync || fail "sync"
opts=$(awk -v m="$vol" '$2 == m {print $4}' /proc/mounts)
case "$opts" in rw,*|rw) ;; *) fail "the ext4 is no longer read-write: $opts" ;; esac
sum=$(sha256sum < "$vol/after")
umount "$vol"
LOOP_MOUNTS=()
e2fsck -fn "$mnt/vol" >/dev/null || fail "e2fsck of the ext4 after the writes"
mount -o loop "$mnt/vol" "$vol"
LOOP_MOUNTS+=("$vol")
expect_eq "$(sha256sum < "$vol/after")" "$sum" "the file written after the fill, read back"
umount "$vol"
LOOP_MOUNTS=()
# The copy is thick too: an overwrite of all of it in place succeeds.
dd if=/dev/zero of="$mnt/copy" bs=1M count=1024 conv=notrunc,fsync status=none || fail "overwrite of the copy"
e2fsck -fn "$mnt/snap" >/dev/null || fail "e2fsck of the snapshot (unchanged by the writes)"

log "vlunctl ls and info show the sharing"
# Raw rows of the sharing columns, in the order asked for: path, then kind, mapped, shared,
# reserved, origin, created as fields 9-14 (the tab-separated layout these checks were written for).
ls_out=$("$VLUNCTL" ls -rn -o PATH,INO,SIZE,CONTEXT,HANDLE,CHUNKS,LAST_LBA,PHYSICAL,KIND,MAPPED,SHARED,RESERVED,ORIGIN,CREATED "$mnt" | tr ' ' '\t')
header=$("$VLUNCTL" ls -r -o PATH,INO,SIZE,CONTEXT,HANDLE,CHUNKS,LAST_LBA,PHYSICAL,KIND,MAPPED,SHARED,RESERVED,ORIGIN,CREATED "$mnt" | head -1 | tr ' ' '\t')
expect_eq "$(cut -f9- <<<"$header")" $'KIND\tMAPPED\tSHARED\tRESERVED\tORIGIN\tCREATED' "ls header's sharing columns"
row() { awk -F'\t' -v p="$1" '$1 == p' <<<"$ls_out"; }
# vol shares with the snapshot the chunks the ext4 did not write after the fill: 0 to 4 of them.
vol_shared=$(row /vol | cut -f11)
expect_eq "$(row /vol | cut -f9,10,12)" $'thick\t4\t'"$vol_shared" "ls /vol: kind, mapped, reserved (one per chunk still shared)"
expect_eq "$(row /snap | cut -f9,10,11,12,13)" $'snapshot\t4\t'"$vol_shared"$'\t0\t/vol' "ls /snap: kind, mapped, shared, reserved, origin"
expect_eq "$(row /copy | cut -f9-12)" $'thick\t4\t0\t0' "ls /copy: every chunk its own now"
expect_eq "$(row /hog | cut -f13)" "-" "ls /hog: no origin"
created=$(row /snap | cut -f14)
case "$created" in "$(date -u +%Y-)"*T*Z) ;; *) fail "ls /snap creation time: '$created'" ;; esac
info=$("$VLUNCTL" info -rn "$mnt")
for key in mapped_chunks shared_chunks reserved_chunks available_chunks thin_bytes thin_overcommit_chunks; do
  grep -q "^$key [0-9]" <<<"$info" || fail "vlunctl info lacks $key: $info"
done
expect_eq "$(awk '$1 == "shared_chunks" {print $2}' <<<"$info")" "$vol_shared" "info: shared chunks (vol with its snapshot)"
expect_eq "$(awk '$1 == "reserved_chunks" {print $2}' <<<"$info")" "$vol_shared" "info: reserved (vol's, to break from the snapshot)"

log "rm of the snapshot releases the reserve"
rm "$mnt/snap"
info=$("$VLUNCTL" info -rn "$mnt")
expect_eq "$(awk '$1 == "reserved_chunks" {print $2}' <<<"$info")" 0 "info: reserved after rm of the snapshot"
umount_fs "$mnt"
fsck_clean "$img"
"$VLUNCTL" info -rn "$img" | grep -q "^reserved_chunks 0$" || fail "vlunctl info IMAGE: $("$VLUNCTL" info "$img")"
