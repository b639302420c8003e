// Scratch files over kernel vLUNs (kernel_vlun_files.h).
#include "client/kernel_vlun_files.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace vlunfs::client {

namespace {

constexpr uint64_t kBounceBlocks = 64;  // blocks per command through the bounce buffer

// A block buffer whose start is 16-byte aligned, as the AFU's data EA must be (spec §4.1).
class Bounce {
 public:
  explicit Bounce(uint64_t bytes) : bytes_(bytes + 16) {}
  std::byte* data() {
    auto at = reinterpret_cast<uintptr_t>(bytes_.data());
    return bytes_.data() + (16 - at % 16) % 16;
  }

 private:
  std::vector<std::byte> bytes_;
};

// The next piece of a byte range [offset, offset + length) that one command moves: `nblocks`
// blocks from `lba`, of which bytes [in_block, in_block + n) are the range's.
struct Piece {
  uint64_t lba, in_block, nblocks, n;
};
Piece next_piece(uint64_t offset, uint64_t length, uint64_t bs) {
  Piece p{offset / bs, offset % bs, 0, 0};
  p.nblocks = std::min(kBounceBlocks, (p.in_block + length + bs - 1) / bs);
  p.n = std::min(length, p.nblocks * bs - p.in_block);
  return p;
}

}  // namespace

Result<std::unique_ptr<KernelVlunFiles>> KernelVlunFiles::open(afu::capi::Kernel& kernel, const std::string& path,
                                                               const afu::capi::DirectLunOptions& options,
                                                               std::string* why) {
  auto vluns = afu::capi::KernelVluns::open(kernel, path, options, why);
  if (!vluns) return vluns.error();
  return std::unique_ptr<KernelVlunFiles>(new KernelVlunFiles(std::move(vluns).value()));
}

Result<KernelVlunFiles::File*> KernelVlunFiles::find_locked(uint64_t file) {
  auto it = files_.find(file);
  if (it == files_.end()) return errno_error(ENOENT);
  return &it->second;
}

Result<uint64_t> KernelVlunFiles::create() {
  std::lock_guard lock(mu_);
  auto handle = vluns_->create(0);
  if (!handle) return handle.error();
  files_[handle.value()] = File{};
  return handle.value();
}

std::error_code KernelVlunFiles::grow_locked(uint64_t file, File& f, uint64_t size) {
  if (size > f.capacity) {
    auto granted = vluns_->resize(file, size);
    if (!granted) return granted.error();
    if (granted.value() < size) {
      // Spec §3.4: a grow the LUN cannot satisfy is truncated, not refused; give it back.
      auto back = vluns_->resize(file, f.capacity);
      f.capacity = back ? back.value() : granted.value();
      return errno_error(ENOSPC);
    }
    f.capacity = granted.value();
  }
  f.size = size;
  return {};
}

std::error_code KernelVlunFiles::truncate(uint64_t file, uint64_t size) {
  std::lock_guard lock(mu_);
  auto found = find_locked(file);
  if (!found) return found.error();
  File& f = *found.value();
  if (size >= f.size) return grow_locked(file, f, size);
  f.size = size;
  f.written_end = std::min(f.written_end, size);
  // The chunks past the new size go back to the LUN (zeroed by the driver when released).
  auto kept = vluns_->resize(file, size);
  if (!kept) return kept.error();
  f.capacity = kept.value();
  return {};
}

std::error_code KernelVlunFiles::write_bytes_locked(uint64_t file, uint64_t offset, const std::byte* data,
                                                    uint64_t length) {
  const uint64_t bs = vluns_->block_size();
  Bounce bounce(kBounceBlocks * bs);
  std::byte* buf = bounce.data();
  while (length > 0) {
    const auto [lba, in_block, nblocks, n] = next_piece(offset, length, bs);
    // Partial blocks keep the bytes around the write: read them first.
    if (in_block != 0) {
      if (auto ec = vluns_->read(file, lba, 1, buf)) return ec;
    }
    const bool partial_tail = (in_block + n) % bs != 0;
    if (partial_tail && (nblocks > 1 || in_block == 0)) {
      if (auto ec = vluns_->read(file, lba + nblocks - 1, 1, buf + (nblocks - 1) * bs)) return ec;
    }
    if (data) {
      std::memcpy(buf + in_block, data, n);
      data += n;
    } else {
      std::memset(buf + in_block, 0, n);
    }
    if (auto ec = vluns_->write(file, lba, nblocks, buf)) return ec;
    offset += n;
    length -= n;
  }
  return {};
}

std::error_code KernelVlunFiles::read_bytes_locked(uint64_t file, uint64_t offset, std::byte* data, uint64_t length) {
  const uint64_t bs = vluns_->block_size();
  Bounce bounce(kBounceBlocks * bs);
  std::byte* buf = bounce.data();
  while (length > 0) {
    const auto [lba, in_block, nblocks, n] = next_piece(offset, length, bs);
    if (auto ec = vluns_->read(file, lba, nblocks, buf)) return ec;
    std::memcpy(data, buf + in_block, n);
    data += n;
    offset += n;
    length -= n;
  }
  return {};
}

std::error_code KernelVlunFiles::write(uint64_t file, uint64_t offset, std::span<const std::byte> in) {
  std::lock_guard lock(mu_);
  auto found = find_locked(file);
  if (!found) return found.error();
  File& f = *found.value();
  if (in.empty()) return {};
  const uint64_t end = offset + in.size();
  if (end < offset) return errno_error(EFBIG);
  if (end > f.size) {
    if (auto ec = grow_locked(file, f, end)) return ec;
  }
  // What lies between the written end and this write must read as zeros once it is inside it.
  if (offset > f.written_end) {
    if (auto ec = write_bytes_locked(file, f.written_end, nullptr, offset - f.written_end)) return ec;
    f.written_end = offset;
  }
  if (auto ec = write_bytes_locked(file, offset, in.data(), in.size())) return ec;
  f.written_end = std::max(f.written_end, end);
  return {};
}

Result<size_t> KernelVlunFiles::read(uint64_t file, uint64_t offset, std::span<std::byte> out) {
  std::lock_guard lock(mu_);
  auto found = find_locked(file);
  if (!found) return found.error();
  const File& f = *found.value();
  if (offset >= f.size) return size_t{0};
  const uint64_t n = std::min<uint64_t>(out.size(), f.size - offset);
  const uint64_t from_flash = offset >= f.written_end ? 0 : std::min(n, f.written_end - offset);
  if (from_flash > 0) {
    if (auto ec = read_bytes_locked(file, offset, out.data(), from_flash)) return ec;
  }
  std::memset(out.data() + from_flash, 0, n - from_flash);
  return static_cast<size_t>(n);
}

std::error_code KernelVlunFiles::remove(uint64_t file) {
  std::lock_guard lock(mu_);
  auto found = find_locked(file);
  if (!found) return found.error();
  if (auto ec = vluns_->release(file)) return ec;
  files_.erase(file);
  return {};
}

Result<uint64_t> KernelVlunFiles::size(uint64_t file) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(file);
  if (it == files_.end()) return errno_error(ENOENT);
  return it->second.size;
}

size_t KernelVlunFiles::files() const {
  std::lock_guard lock(mu_);
  return files_.size();
}

KernelVlunFiles::ChunkUsage KernelVlunFiles::chunk_usage() const {
  constexpr uint64_t kChunkBlocks = uint64_t{1} << 16;  // MC_CHUNK_SIZE (spec §2)
  std::lock_guard lock(mu_);
  ChunkUsage usage;
  usage.chunk_bytes = kChunkBlocks * vluns_->block_size();
  usage.total = vluns_->lun_blocks() / kChunkBlocks;
  for (const auto& [id, f] : files_) usage.used += (f.capacity + usage.chunk_bytes - 1) / usage.chunk_bytes;
  return usage;
}

std::error_code KernelVlunFiles::flush() {
  std::lock_guard lock(mu_);
  return vluns_->flush();
}

std::error_code KernelVlunFiles::clone_in_child(std::string* why) {
  std::lock_guard lock(mu_);
  return vluns_->clone_in_child(why);
}

}  // namespace vlunfs::client
