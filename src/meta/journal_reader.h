// Reads the records of one journal epoch from the start of the journal region, in order, up to the
// first one that is not a valid continuation (docs/format.md, "Mount").
#pragma once

#include "vlunfs/store.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace vlunfs::meta {

struct JournalEntry {
  uint64_t offset = 0;  // of the header, from the start of the journal region
  uint64_t end = 0;     // offset just past the payload
  uint64_t seq = 0;
  uint8_t type = 0;
  uint32_t header_crc = 0;  // the chain value after this record
  std::vector<std::byte> payload;
};

class JournalReader {
 public:
  JournalReader(store::BlockStore& device, uint64_t journal_offset, uint64_t journal_bytes, uint64_t epoch,
                uint64_t first_seq, uint32_t seed);
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // The next record, if its header and payload are intact and it is the expected continuation
  // (epoch, sequence number, CRC chain). Otherwise false, and stop_reason() says why and where;
  // io_error() is set if a read failed.
  bool next(JournalEntry* out);

  const std::string& stop_reason() const { return stop_reason_; }
  std::error_code io_error() const { return io_error_; }

 private:
  bool stop(std::string reason);
  bool read(uint64_t offset, size_t n, std::byte* out);

  store::BlockStore& device_;
  const uint64_t journal_offset_;
  const uint64_t journal_bytes_;
  const uint64_t epoch_;
  uint64_t offset_ = 0;
  uint64_t expected_seq_;
  uint32_t chain_;
  bool stopped_ = false;
  std::string stop_reason_;
  std::error_code io_error_;
  // Reads go through a window of the journal, so that replaying many small records is a few large
  // reads rather than two per record.
  uint64_t window_start_ = 0;
  std::vector<std::byte> window_;
};

}  // namespace vlunfs::meta
