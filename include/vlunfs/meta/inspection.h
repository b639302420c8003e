// meta/: for fsck, every superblock copy and checkpoint slot, not only the pair MetaStore::open() uses.
#pragma once

#include "vlunfs/store.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vlunfs::meta {

struct MetadataCopyReport {
  uint64_t offset = 0;      // device byte
  bool valid = false;
  bool absent = false;      // superblocks: no magic at all
  uint64_t generation = 0;  // when known
  uint64_t inodes = 0;      // checkpoints: inodes in a valid one
  std::string problem;      // empty when valid
};
struct MetadataInspection {
  MetadataCopyReport superblocks[2];
  MetadataCopyReport checkpoints[2];  // slot i, checked against superblock copy i (which describes it)
  bool read_error = false;
  bool copies_disagree = false;       // both superblocks valid, but different geometry or UUID
  std::vector<std::string> problems;  // every defect, in words that name what and where
};
// Reads and checks both superblock copies and both checkpoint slots (CRC, fields, a decodable and
// consistent namespace). Never crashes or reads out of bounds on a corrupt device.
MetadataInspection inspect_metadata(store::BlockStore& device);

}  // namespace vlunfs::meta
