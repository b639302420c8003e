// store/: which part of the image a completed write starts writing back (FileStoreOptions::
// write_behind). Internal to the file store; declared here so its unit test can reach it.
#pragma once

#include <cstdint>
#include <utility>

namespace vlunfs::store {

// The write-behind rule: the range [first, second) whose writeback a completed write of
// [offset, end) starts, or an empty range. A write that reaches or crosses the end of a window
// sends from the start of the window it began in up to the last window end it reached, so a
// sequential stream of any request size sends each window once, as soon as it is complete; a
// write that stays inside its window sends nothing.
std::pair<uint64_t, uint64_t> write_behind_range(uint64_t offset, uint64_t end, uint64_t window);

}  // namespace vlunfs::store
