// Waiting for a daemon that is releasing an image (image_release.h).

#include "vlunfs/image_release.h"

#include "vlunfs/mount_table.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace vlunfs::store {

namespace {

// A daemon lets go some 10-25 ms after umount returns (measured, docs/reliability.md): poll at a
// fraction of that, so that `umount && fsck` costs little more than the release itself.
constexpr std::chrono::milliseconds kPollInterval{5};
// A daemon lets go of the lock a moment after its descriptor leaves /proc/PID/fd (and may let go
// between a failed try and the look at its descriptors): a busy lock with no daemon in sight is
// tried a few more times before it counts as another program's.
constexpr int kUnexplainedTries = 3;

bool is_mounted(const std::string& image) { return vlunfs_mount_of(read_mount_table(), image).has_value(); }

// Whether a process named vlunfs has the image open: the daemon holds it from before its mount
// appears until after its mount is gone. A process whose descriptors cannot be read (another
// user's, for a caller that is not root) counts, so that the caller waits rather than refuses.
bool held_by_a_vlunfs_process(const std::string& image) {
  struct stat wanted;
  if (::stat(image.c_str(), &wanted) != 0) return false;
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string comm;
    std::getline(std::ifstream(proc.path() / "comm"), comm);
    if (comm != "vlunfs" || pid == std::to_string(::getpid())) continue;
    std::error_code fd_ec;
    std::filesystem::directory_iterator fds(proc.path() / "fd", fd_ec);
    if (fd_ec) {
      if (fd_ec.value() == EACCES) return true;
      continue;  // it has just exited
    }
    for (const auto& fd : fds) {
      struct stat st;
      if (::stat(fd.path().c_str(), &st) == 0 && st.st_dev == wanted.st_dev && st.st_ino == wanted.st_ino) return true;
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<BlockStore>> open_file_store_after_release(const std::string& path, FileStoreOptions options,
                                                                  const ReleaseWait& wait) {
  options.exclusive_lock = true;
  const auto deadline = std::chrono::steady_clock::now() + wait.limit;
  bool said = false;
  int unexplained = 0;  // tries in a row that found the lock busy and no daemon holding the image
  for (;;) {
    auto opened = open_file_store(path, options);
    // The mount table is read at each try: a daemon that was starting may have mounted.
    if (opened || opened.error().value() != EBUSY || is_mounted(path)) return opened;
    if (held_by_a_vlunfs_process(path)) {
      unexplained = 0;
      if (!said && wait.on_wait) wait.on_wait();
      said = true;
    } else if (++unexplained > kUnexplainedTries) {
      return opened;  // mkfs or fsck holds it, which no waiting helps
    }
    if (std::chrono::steady_clock::now() >= deadline) return opened;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<std::string> vlunfs_mountpoint_of(const std::string& image) {
  auto mount = vlunfs_mount_of(read_mount_table(), image);
  if (!mount) return std::nullopt;
  return mount->mountpoint;
}

}  // namespace vlunfs::store
