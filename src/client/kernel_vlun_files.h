// Scratch files as real kernel vLUNs (issue 13's `-o kernel_vluns` mode, docs/hardware.md): each
// file is one vLUN of the cxlflash driver (USER_VIRTUAL, VLUN_RESIZE, RELEASE; VLUN_CLONE in a
// forked daemon), its chunk map kept by the kernel in memory only, so nothing outlives this
// object: every vLUN is RELEASEd and the context DETACHed when it goes. Byte-granular reads and
// writes over the vLUNs' 4 KiB blocks.
//
// Unwritten bytes read as zeros without trusting the flash: a file remembers the end of what was
// written (`written_end`); reads past it return zeros, and a write that starts past it first zeros
// the gap on the flash, since a chunk may hold what an earlier user of the LUN left there.
#pragma once

#include "afu/capi/kernel.h"
#include "afu/capi/kernel_vluns.h"
#include "vlunfs/error.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

namespace vlunfs::client {

class KernelVlunFiles {
 public:
  // One context on the CAPI LUN at `path`; *why explains a refusal (not a CAPI LUN, in use).
  static Result<std::unique_ptr<KernelVlunFiles>> open(afu::capi::Kernel& kernel, const std::string& path,
                                                      const afu::capi::DirectLunOptions& options, std::string* why);

  // A new empty file (USER_VIRTUAL of size 0); its id.
  Result<uint64_t> create();
  // The file's size becomes `size`: VLUN_RESIZE to the whole chunks that hold it (ENOSPC when the
  // LUN has too few, the file then keeps its old size).
  std::error_code truncate(uint64_t file, uint64_t size);
  // Bytes [offset, offset + out.size()) up to the end of the file; how many were read.
  Result<size_t> read(uint64_t file, uint64_t offset, std::span<std::byte> out);
  // Writes all of `in` at `offset`, growing the file as needed.
  std::error_code write(uint64_t file, uint64_t offset, std::span<const std::byte> in);
  // RELEASE: the vLUN's chunks go back to the LUN (zeroed by the driver, spec §3.3 NEED_WRITE_SAME).
  std::error_code remove(uint64_t file);
  Result<uint64_t> size(uint64_t file) const;
  size_t files() const;

  // The LUN in the driver's chunks (spec §5.1: 2^16 blocks each, the LBAs after the last whole
  // chunk unused) and how many of them this object's files map: what statfs reports.
  struct ChunkUsage {
    uint64_t chunk_bytes = 0;
    uint64_t total = 0;
    uint64_t used = 0;
  };
  ChunkUsage chunk_usage() const;
  // What was written is on the flash (SYNCHRONIZE CACHE); fsync of any file.
  std::error_code flush();

  // In a forked daemon: a context of its own into which VLUN_CLONE copies the parent's vLUNs.
  std::error_code clone_in_child(std::string* why);

 private:
  struct File {
    uint64_t size = 0;
    uint64_t capacity = 0;     // bytes the vLUN maps (whole chunks)
    uint64_t written_end = 0;  // bytes below this may have been written; above, zeros
  };

  explicit KernelVlunFiles(std::unique_ptr<afu::capi::KernelVluns> vluns) : vluns_(std::move(vluns)) {}
  Result<File*> find_locked(uint64_t file);
  std::error_code grow_locked(uint64_t file, File& f, uint64_t size);
  // Blocks are moved through an aligned bounce buffer (data_ea must be 16-byte aligned, spec
  // §4.1); partial blocks are read, modified and written back.
  std::error_code write_bytes_locked(uint64_t file, uint64_t offset, const std::byte* data, uint64_t length);
  std::error_code read_bytes_locked(uint64_t file, uint64_t offset, std::byte* data, uint64_t length);

  std::unique_ptr<afu::capi::KernelVluns> vluns_;
  mutable std::mutex mu_;  // protects files_ and orders every file's I/O (a scratch mode, one lock)
  std::map<uint64_t, File> files_;
};

}  // namespace vlunfs::client
