// A checkpoint: the whole namespace, every inode with its LXT and directory entries, as one image
// in a checkpoint slot (format.h, docs/format.md "Checkpoint").
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace vlunfs::meta {

// The image of `ns` for generation `generation`, holding every record before `first_seq`. Inodes
// are written in ascending ino order, so equal namespaces give equal images.
std::vector<std::byte> encode_checkpoint(const Namespace& ns, uint64_t generation, uint64_t first_seq);

// The exact length of encode_checkpoint(ns, ...), without encoding: O(inodes + directory entries).
uint64_t checkpoint_size(const Namespace& ns);

// An upper bound on how much applying `record` to `ns` changes checkpoint_size(): exact for what
// adds (a new inode, a new name, LXT entries), an underestimate of what removes (the true image may
// shrink more). Constant time apart from a Free's inode. MetaStore keeps the namespace's image
// within its slot with it, so that a checkpoint can always fold a full journal.
int64_t checkpoint_growth(const Namespace& ns, const Record& record);

// Decodes an image whose length and CRC the superblock has already vouched for, and checks the
// namespace's invariants (namespace_check.h): a valid CRC does not make a checkpoint sane. EUCLEAN
// saying what is wrong (and, for an inode, which one and at what byte of the image) if anything is.
Result<Namespace, Error> decode_checkpoint(std::span<const std::byte> image, uint64_t generation, uint64_t first_seq);

}  // namespace vlunfs::meta
