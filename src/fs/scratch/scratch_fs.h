// The filesystem of `vlunfs -o kernel_vluns` (docs/hardware.md "Scratch mounts of kernel vLUNs"):
// one flat root directory of regular files, each a real kernel vLUN (client/kernel_vlun_files.h).
// The names, modes and times live in this process's memory and the chunk maps in the kernel's,
// so nothing is kept after unmount. Directories, links and special files are refused: the mode is
// flat on purpose (mkdir answers EPERM and says so in the log).
#pragma once

#include "client/kernel_vlun_files.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace vlunfs::fs::scratch {

class ScratchFs {
 public:
  explicit ScratchFs(std::unique_ptr<client::KernelVlunFiles> files);
  ScratchFs(const ScratchFs&) = delete;
  ScratchFs& operator=(const ScratchFs&) = delete;

  client::KernelVlunFiles& files() { return *files_; }
  // The FUSE operations, each turning a request into calls on this object and one reply
  // (userdata: the ScratchFs).
  static const fuse_lowlevel_ops& operations();

  // What the operations do, with errors as values (errno-valued); the FUSE binding in
  // scratch_fs.cc turns them into replies.
  struct Entry {
    fuse_ino_t ino = 0;
    struct stat attr {};
  };
  Result<Entry> lookup(fuse_ino_t parent, const std::string& name);
  Result<struct stat> getattr(fuse_ino_t ino);
  Result<struct stat> setattr(fuse_ino_t ino, const struct stat& to, int to_set);
  Result<Entry> create(fuse_ino_t parent, const std::string& name, mode_t mode, uid_t uid, gid_t gid);
  std::error_code open(fuse_ino_t ino);
  std::error_code release(fuse_ino_t ino);
  std::error_code unlink(fuse_ino_t parent, const std::string& name);
  std::error_code rename(fuse_ino_t parent, const std::string& name, fuse_ino_t new_parent,
                         const std::string& new_name, unsigned flags);
  void forget(fuse_ino_t ino, uint64_t nlookup);
  Result<size_t> read(fuse_ino_t ino, uint64_t offset, std::span<std::byte> out);
  std::error_code write(fuse_ino_t ino, uint64_t offset, std::span<const std::byte> in);
  // The root's entries at this moment, in name order.
  std::map<std::string, fuse_ino_t> list() const;
  struct statvfs statfs() const;

 private:
  struct Node {
    std::optional<uint64_t> file;  // the vLUN, until the last name and the last open are gone
    std::string name;              // empty once unlinked
    mode_t mode = S_IFREG | 0644;
    uid_t uid = 0;
    gid_t gid = 0;
    timespec atime{}, mtime{}, ctime{};
    uint64_t nlookup = 0;  // the kernel's references (FUSE lookup count)
    uint64_t opens = 0;
  };
  Result<Node*> node_locked(fuse_ino_t ino);
  Result<struct stat> stat_locked(fuse_ino_t ino, const Node& node);
  // The vLUN of an inode that still has one (takes mu_).
  Result<uint64_t> vlun_of(fuse_ino_t ino);
  // Drops `ino`'s name; its vLUN is RELEASEd now unless it is still open (then at the last release).
  std::error_code unlink_locked(fuse_ino_t ino);
  std::error_code release_if_unused_locked(Node& node);

  std::unique_ptr<client::KernelVlunFiles> files_;
  const uid_t root_uid_;
  const gid_t root_gid_;
  const timespec mounted_at_;
  mutable std::mutex mu_;  // protects everything below (the vLUNs' own I/O is ordered by files_)
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;
  std::map<fuse_ino_t, Node> nodes_;
  std::map<std::string, fuse_ino_t> names_;
};

}  // namespace vlunfs::fs::scratch
