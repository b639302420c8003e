// What the store/ tests share: a scratch directory, recognisable bytes, and a store opened or the
// test failed.
#pragma once

#include "vlunfs/store.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vlunfs::store::test_files {

// A fresh directory named PREFIX-XXXXXX, removed with everything in it when the test ends.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "/tmp/vlunfs-store-test") {
    std::string name = prefix + "-XXXXXX";
    if (::mkdtemp(name.data()) == nullptr) std::abort();
    path_ = name;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Bytes that differ per position and per seed, so a block landing in the wrong place or a stale
// block is detected.
inline std::vector<std::byte> pattern(size_t length, uint8_t seed) {
  std::vector<std::byte> bytes(length);
  for (size_t i = 0; i < length; i++) {
    bytes[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
  }
  return bytes;
}

inline std::unique_ptr<BlockStore> open_or_die(const std::string& path, const FileStoreOptions& options) {
  auto store = open_file_store(path, options);
  if (!store) {
    ADD_FAILURE() << "open_file_store(" << path << "): " << store.error().message();
    return nullptr;
  }
  return std::move(store).value();
}

}  // namespace vlunfs::store::test_files
