// Little-endian fixed-width encoding for the on-disk structures (docs/format.md), and a decoder
// that never reads past the end of its input: everything it reads may be corrupt or hostile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace vlunfs::meta {

inline void store_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void store_u64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline uint32_t load_u32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t{std::to_integer<uint8_t>(p[i])} << (8 * i);
  return v;
}
inline uint64_t load_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t{std::to_integer<uint8_t>(p[i])} << (8 * i);
  return v;
}

// Appends encoded values to a byte vector.
class Encoder {
 public:
  explicit Encoder(std::vector<std::byte>* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(static_cast<std::byte>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v));
    u8(static_cast<uint8_t>(v >> 8));
  }
  void u32(uint32_t v) {
    const size_t at = grow(4);
    store_u32(out_->data() + at, v);
  }
  void u64(uint64_t v) {
    const size_t at = grow(8);
    store_u64(out_->data() + at, v);
  }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void bytes(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = grow(n);
    std::memcpy(out_->data() + at, p, n);
  }
  // Callers check the length limits (names <= 255 bytes, symlinks <= 4095) before encoding.
  void name(const std::string& s) {
    u8(static_cast<uint8_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void text16(const std::string& s) {
    u16(static_cast<uint16_t>(s.size()));
    bytes(s.data(), s.size());
  }

 private:
  size_t grow(size_t n) {
    const size_t at = out_->size();
    out_->resize(at + n);
    return at;
  }
  std::vector<std::byte>* out_;
};

// Reads encoded values from a span. The first read that would run past the end fails, and so does
// every read after it (ok() turns false and values read as zero), so a decoder may read a whole
// structure and check ok() once, as long as it checks ok() before it trusts a count.
class Decoder {
 public:
  explicit Decoder(std::span<const std::byte> in) : in_(in) {}
  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  size_t position() const { return pos_; }

  uint8_t u8() {
    const std::byte* p = take(1);
    return p ? std::to_integer<uint8_t>(*p) : 0;
  }
  uint16_t u16() {
    const std::byte* p = take(2);
    return p ? static_cast<uint16_t>(std::to_integer<uint16_t>(p[0]) | std::to_integer<uint16_t>(p[1]) << 8)
             : 0;
  }
  uint32_t u32() {
    const std::byte* p = take(4);
    return p ? load_u32(p) : 0;
  }
  uint64_t u64() {
    const std::byte* p = take(8);
    return p ? load_u64(p) : 0;
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  // A string of `n` bytes; fails (and returns "") if fewer remain.
  std::string text(size_t n) {
    if (n == 0) return {};
    const std::byte* p = take(n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
  }
  void fail() { ok_ = false; }

 private:
  const std::byte* take(size_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return nullptr;
    }
    const std::byte* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }

  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace vlunfs::meta
