// Journal replay reading (journal_reader.h).

#include "meta/journal_reader.h"

#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace vlunfs::meta {

namespace rf = record_field;

namespace {

constexpr uint64_t kWindowBytes = uint64_t{1} << 20;

std::string hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "%08x", v);
  return text;
}

}  // namespace

JournalReader::JournalReader(store::BlockStore& device, uint64_t journal_offset, uint64_t journal_bytes,
                             uint64_t epoch, uint64_t first_seq, uint32_t seed)
    : device_(device), journal_offset_(journal_offset), journal_bytes_(journal_bytes), epoch_(epoch),
      expected_seq_(first_seq), chain_(seed) {}

bool JournalReader::stop(std::string reason) {
  stopped_ = true;
  stop_reason_ = std::move(reason);
  return false;
}

bool JournalReader::read(uint64_t offset, size_t n, std::byte* out) {
  if (offset < window_start_ || offset + n > window_start_ + window_.size()) {
    const uint64_t start = offset / kMetaBlock * kMetaBlock;
    const uint64_t length = std::min(journal_bytes_ - start, std::max(kWindowBytes, offset + n - start));
    window_.resize(static_cast<size_t>(length));
    window_start_ = start;
    if (auto ec = device_.read(journal_offset_ + start, window_)) {
      window_.clear();
      io_error_ = ec;
      return false;
    }
  }
  std::memcpy(out, window_.data() + (offset - window_start_), n);
  return true;
}

bool JournalReader::next(JournalEntry* out) {
  if (stopped_) return false;
  const uint64_t at = offset_;
  const std::string where = "at journal offset " + std::to_string(at) + " (device byte " +
                            std::to_string(journal_offset_ + at) + ")";
  // Every offset below is at most journal_bytes_ (<= 4 GiB), so none of the sums can overflow.
  if (journal_bytes_ - at < kRecordHeaderBytes) return stop("end of the journal region " + where);
  std::byte h[kRecordHeaderBytes];
  if (!read(at, sizeof h, h)) return stop("read error " + where + ": " + io_error_.message());
  if (std::all_of(std::begin(h), std::end(h), [](std::byte b) { return b == std::byte{0}; })) {
    return stop("end of the journal: zeros " + where);
  }
  const uint64_t epoch = load_u64(h + rf::kEpoch);
  const uint64_t seq = load_u64(h + rf::kSeq);
  const uint32_t length = load_u32(h + rf::kPayloadLength);
  // A record of another epoch is how a journal normally ends after a checkpoint, so it is named
  // first; the CRC would refuse it as well.
  if (epoch != epoch_) {
    return stop("record " + where + " belongs to epoch " + std::to_string(epoch) + ", not " + std::to_string(epoch_));
  }
  if (seq != expected_seq_) {
    return stop("record " + where + " has sequence number " + std::to_string(seq) + ", expected " +
                std::to_string(expected_seq_));
  }
  const uint32_t stored_header_crc = load_u32(h + rf::kHeaderCrc);
  const uint32_t header_crc = crc32c(h + 4, kRecordHeaderBytes - 4, chain_);
  if (stored_header_crc != header_crc) {
    return stop("bad header CRC " + where + " (stored " + hex32(stored_header_crc) + ", computed " + hex32(header_crc) +
                ")");
  }
  if (length > journal_bytes_ - at - kRecordHeaderBytes) {
    return stop("record " + where + " with a payload of " + std::to_string(length) +
                " bytes runs past the end of the journal");
  }
  if (h[13] != std::byte{0} || h[14] != std::byte{0} || h[15] != std::byte{0}) {
    return stop("record " + where + " has nonzero reserved header bytes");
  }
  std::vector<std::byte> payload(length);
  if (length > 0 && !read(at + kRecordHeaderBytes, length, payload.data())) {
    return stop("read error " + where + ": " + io_error_.message());
  }
  const uint32_t stored_payload_crc = load_u32(h + rf::kPayloadCrc);
  const uint32_t payload_crc = crc32c(payload.data(), payload.size());
  if (stored_payload_crc != payload_crc) {
    return stop("bad payload CRC " + where + " (stored " + hex32(stored_payload_crc) + ", computed " +
                hex32(payload_crc) + ")");
  }

  out->offset = at;
  out->end = at + kRecordHeaderBytes + length;
  out->seq = seq;
  out->type = std::to_integer<uint8_t>(h[rf::kType]);
  out->header_crc = header_crc;
  out->payload = std::move(payload);
  offset_ = out->end;
  expected_seq_ = seq + 1;
  chain_ = header_crc;
  return true;
}

}  // namespace vlunfs::meta
