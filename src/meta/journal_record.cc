// Journal record framing (journal_record.h).

#include "meta/journal_record.h"

#include "meta/coding.h"
#include "meta/crc32c.h"

#include <cstring>

namespace vlunfs::meta {

namespace rf = record_field;

uint32_t journal_seed(const uint8_t (&uuid)[16], uint64_t epoch, uint64_t first_seq) {
  std::byte bytes[32];
  std::memcpy(bytes, uuid, 16);
  store_u64(bytes + 16, epoch);
  store_u64(bytes + 24, first_seq);
  return crc32c(bytes, sizeof bytes);
}

uint32_t encode_record_header(std::byte* header, uint32_t chain, RecordType type, std::span<const std::byte> payload,
                              uint64_t epoch, uint64_t seq) {
  std::memset(header, 0, kRecordHeaderBytes);
  store_u32(header + rf::kPayloadCrc, crc32c(payload.data(), payload.size()));
  store_u32(header + rf::kPayloadLength, static_cast<uint32_t>(payload.size()));
  header[rf::kType] = static_cast<std::byte>(type);
  store_u64(header + rf::kEpoch, epoch);
  store_u64(header + rf::kSeq, seq);
  const uint32_t header_crc = crc32c(header + 4, kRecordHeaderBytes - 4, chain);
  store_u32(header + rf::kHeaderCrc, header_crc);
  return header_crc;
}

}  // namespace vlunfs::meta
