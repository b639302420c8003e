// The rule for the zero chunk, one for every program (docs/format.md, "Chunk maps"): the data
// area's last chunk is the zero chunk. It is never allocated and never written; thin vLUNs map
// their unwritten chunks to it read-only. So a data area of N chunks gives files N - 1.
#pragma once

#include <cstdint>

namespace vlunfs::vlun {

// The zero chunk of a data area (the physical LUN) of `data_chunks` chunks (at least one).
constexpr uint64_t zero_chunk_aun(uint64_t data_chunks) { return data_chunks - 1; }

// The chunks files can be given: all but the zero chunk.
constexpr uint64_t allocatable_chunks(uint64_t data_chunks) { return data_chunks == 0 ? 0 : data_chunks - 1; }

}  // namespace vlunfs::vlun
