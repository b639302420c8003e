// The framing of one journal record: a 32-byte header (format.h, record_field) in front of the
// payload that record_codec.h encodes. Shared by the journal writer and reader.
#pragma once

#include "meta/format.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace vlunfs::meta {

// The chain value the first record of a journal epoch is seeded with. Mixing in the file system's
// uuid and the epoch's first sequence number makes a record of an older epoch, or of an earlier
// file system on the same device, fail its CRC even where its epoch and sequence number happen to fit.
uint32_t journal_seed(const uint8_t (&uuid)[16], uint64_t epoch, uint64_t first_seq);

// Fills `header` (kRecordHeaderBytes) for `payload` and returns its header CRC, which is the chain
// value for the record after it.
uint32_t encode_record_header(std::byte* header, uint32_t chain, RecordType type, std::span<const std::byte> payload,
                              uint64_t epoch, uint64_t seq);

}  // namespace vlunfs::meta
