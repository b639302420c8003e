// Waiting for a daemon that is releasing an image (image_release.h).

#include "vlunfs/image_release.h"

#include "vlunfs/mount_table.h"

#include <thread>

namespace vlunfs::store {

namespace {

// A daemon lets go some 10-25 ms after umount returns (measured, docs/reliability.md): poll at a
// fraction of that, so that `umount && fsck` costs little more than the release itself.
constexpr std::chrono::milliseconds kPollInterval{5};

bool is_mounted(const std::string& image) { return vlunfs_mount_of(read_mount_table(), image).has_value(); }

}  // namespace

Result<std::unique_ptr<BlockStore>> open_file_store_after_release(const std::string& path, FileStoreOptions options,
                                                                  const ReleaseWait& wait) {
  options.exclusive_lock = true;
  auto opened = open_file_store(path, options);
  if (opened || opened.error().value() != EBUSY || is_mounted(path)) return opened;
  if (wait.on_wait) wait.on_wait();
  const auto deadline = std::chrono::steady_clock::now() + wait.limit;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kPollInterval);
    opened = open_file_store(path, options);
    if (opened || opened.error().value() != EBUSY || is_mounted(path)) return opened;
  }
  return opened;
}

std::optional<std::string> vlunfs_mountpoint_of(const std::string& image) {
  auto mount = vlunfs_mount_of(read_mount_table(), image);
  if (!mount) return std::nullopt;
  return mount->mountpoint;
}

}  // namespace vlunfs::store
