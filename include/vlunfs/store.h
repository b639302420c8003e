// store/: the physical LUN's bytes. One small interface, several implementations side by side:
// an image file or block device, memory (tests), a fault-injecting wrapper (crash tests) and a
// region view (a byte range of another store).
#pragma once

#include "vlunfs/error.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

namespace vlunfs::store {

// Offsets and lengths are in bytes. Callers keep I/O inside [0, size_bytes()); implementations
// return EINVAL for a range outside it. All methods are safe to call from many threads at once.
class BlockStore {
 public:
  virtual ~BlockStore() = default;
  virtual std::error_code read(uint64_t offset, std::span<std::byte> out) = 0;
  virtual std::error_code write(uint64_t offset, std::span<const std::byte> data) = 0;
  // Makes every completed write durable (fdatasync for files and devices).
  virtual std::error_code flush() = 0;
  // Afterwards [offset, offset+length) reads as zeros; space may be given back (punch hole).
  virtual std::error_code discard(uint64_t offset, uint64_t length) = 0;
  virtual uint64_t size_bytes() const = 0;
  virtual uint32_t block_size() const = 0;
};

struct FileStoreOptions {
  uint32_t block_size = 4096;  // 4096 or 512; a block device reports its own logical block size
  uint64_t create_size = 0;    // create a sparse image of this size if the path does not exist
  bool read_only = false;
  // Take flock(LOCK_EX|LOCK_NB), and open a block device with O_EXCL: EBUSY if another process
  // holds it, or if the device is mounted or held by the kernel (device mapper, md, ...).
  bool exclusive_lock = false;
  // Write-behind: when a write reaches the end of an aligned window of this many bytes, writeback
  // of that window's dirty pages is started at once (sync_file_range, not waited for), so a
  // sequential stream goes to the disk while it is being written and a later flush() has little
  // left to do. 0 leaves it to the kernel's flusher threads. Durability is unchanged: only
  // flush() promises it.
  uint64_t write_behind = 0;
  // O_DIRECT (like qemu's cache=none): the image's bytes bypass the page cache under it, so data
  // read or written through a mount is cached once, in the mount's own page cache. Transfers the
  // kernel cannot take directly go through aligned bounce buffers (partial blocks by
  // read-modify-write). flush() is still an fdatasync: O_DIRECT does not empty the disk's write
  // cache, nor commit a sparse image's block allocations. Write-behind does nothing then (no
  // dirty pages to send). A filesystem that refuses O_DIRECT (ramfs) makes the open fail with
  // EOPNOTSUPP; an image whose size is not a multiple of the direct I/O alignment with EINVAL.
  bool direct = false;
};

// An image file (sparse) or a block device.
Result<std::unique_ptr<BlockStore>> open_file_store(const std::string& path,
                                                    const FileStoreOptions& options);

// Sparse memory: pages are allocated on first write, so a 1 TiB LUN costs only what is written.
std::unique_ptr<BlockStore> make_memory_store(uint64_t size_bytes, uint32_t block_size = 4096);

// A window [offset, offset+length) of another store, seen as a store of its own. With a
// block_size other than 0 the window reports that block size (e.g. 4096-byte blocks of a
// filesystem on a device with 512-byte sectors); 0 keeps the base's.
std::unique_ptr<BlockStore> make_region_store(BlockStore& base, uint64_t offset, uint64_t length,
                                              uint32_t block_size = 0);

bool is_block_device(const std::string& path);

}  // namespace vlunfs::store
