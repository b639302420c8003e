// The physical LUN as an image file or a block device: positioned reads and writes on one file
// descriptor, so any number of threads can do I/O at once without a lock (with O_DIRECT, only a
// read-modify-write of a partial block takes one: direct_io.h).

#include "store/direct_io.h"
#include "store/positioned_io.h"
#include "store/write_behind.h"
#include "vlunfs/store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace vlunfs::store {

namespace {

// The source of zeros for discards that have to write them. Built on first use rather than as a
// constant array, which would put a megabyte of zeros into every binary's .rodata for a fallback
// that most filesystems never take. Page-aligned, so an O_DIRECT store writes it without a copy.
constexpr size_t kZeroChunk = 1 << 20;
std::span<const std::byte> zero_chunk() {
  static std::byte* const zeros = [] {
    auto* p = static_cast<std::byte*>(std::aligned_alloc(4096, kZeroChunk));
    if (p != nullptr) std::memset(p, 0, kZeroChunk);
    return p;
  }();
  if (zeros == nullptr) return {};
  return {zeros, kZeroChunk};
}

// Closes the descriptor unless it has been released to a store. Keeps errno intact, because the
// error paths below return it after cleaning up.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) {
      int saved = errno;
      ::close(fd_);
      errno = saved;
    }
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    ScopedFd old(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

bool range_ok(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

class FileStore final : public BlockStore {
 public:
  // With `direct`, fd was opened with O_DIRECT and every transfer goes through it.
  FileStore(int fd, uint64_t size, uint32_t block_size, bool read_only, bool is_device,
            uint64_t write_behind, std::optional<DirectIoAlignment> direct)
      : fd_(fd), size_(size), block_size_(block_size), read_only_(read_only),
        is_device_(is_device), write_behind_(direct ? 0 : write_behind) {
    if (direct) direct_.emplace(fd, *direct);
  }
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;
  // Closing also drops the flock, if one was taken.
  ~FileStore() override { ::close(fd_); }

  std::error_code read(uint64_t offset, std::span<std::byte> out) override {
    if (!range_ok(offset, out.size(), size_)) return errno_error(EINVAL);
    if (direct_) return direct_->read(offset, out);
    return pread_fully(fd_, offset, out);
  }

  std::error_code write(uint64_t offset, std::span<const std::byte> data) override {
    if (read_only_) return errno_error(EROFS);
    if (!range_ok(offset, data.size(), size_)) return errno_error(EINVAL);
    if (auto ec = write_all(offset, data)) return ec;
    start_writeback(offset, offset + data.size());
    return {};
  }

  std::error_code flush() override {
    // A read-only store has no writes to make durable.
    if (read_only_) return {};
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return last_errno();
    }
    return {};
  }

  std::error_code discard(uint64_t offset, uint64_t length) override {
    if (read_only_) return errno_error(EROFS);
    if (!range_ok(offset, length, size_)) return errno_error(EINVAL);
    if (length == 0) return {};  // fallocate and BLKZEROOUT both reject an empty range
    return is_device_ ? zero_device_range(offset, length) : punch_hole(offset, length);
  }

  uint64_t size_bytes() const override { return size_; }
  uint32_t block_size() const override { return block_size_; }

 private:
  // Write-behind (FileStoreOptions::write_behind, the range by write_behind_range). Random small
  // writes end on a window's edge too seldom to matter. SYNC_FILE_RANGE_WRITE alone neither waits
  // nor checks for errors, so a failed writeback is still reported, by the fdatasync in flush(),
  // to whoever asks for durability; its own result is a hint's and is ignored.
  void start_writeback(uint64_t offset, uint64_t end) const {
    auto [from, to] = write_behind_range(offset, end, write_behind_);
    if (from == to) return;
    (void)::sync_file_range(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from),
                            SYNC_FILE_RANGE_WRITE);
  }

  std::error_code write_all(uint64_t offset, std::span<const std::byte> data) {
    if (direct_) return direct_->write(offset, data);
    return pwrite_fully(fd_, offset, data);
  }

  std::error_code write_zeros(uint64_t offset, uint64_t length) {
    if (zero_chunk().empty()) return errno_error(ENOMEM);
    while (length > 0) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, kZeroChunk));
      if (auto ec = write_all(offset, zero_chunk().first(chunk))) return ec;
      offset += chunk;
      length -= chunk;
    }
    return {};
  }

  // KEEP_SIZE because the image's size is the LUN's size; a hole at the end must not shrink it.
  // The kernel zeroes the partial blocks at either end itself.
  std::error_code punch_hole(uint64_t offset, uint64_t length) {
    while (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                       static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
      if (errno == EINTR) continue;
      // Filesystems without hole punching (some network and FUSE filesystems): the contract is
      // "reads as zeros", giving the space back is only a bonus.
      if (errno == EOPNOTSUPP || errno == ENOSYS) return write_zeros(offset, length);
      return last_errno();
    }
    return {};
  }

  // Not BLKDISCARD: a discarded sector may read back as anything (or as its old contents), and the
  // interface promises zeros. First fallocate(PUNCH_HOLE) on the device, which the kernel serves
  // only by an unmap that is guaranteed to read back as zeros (WRITE ZEROES with unmap: what
  // BLKDISCARDZEROES once promised for discards) and refuses otherwise, so it is always fast; a
  // loop device passes it on as a hole in its backing file. Then BLKZEROOUT, which the kernel
  // turns into WRITE ZEROES where it can and into written zeros otherwise. Both take only whole
  // logical blocks, so the unaligned ends are written here.
  std::error_code zero_device_range(uint64_t offset, uint64_t length) {
    const uint64_t end = offset + length;
    const uint64_t aligned_begin = (offset + block_size_ - 1) / block_size_ * block_size_;
    const uint64_t aligned_end = end / block_size_ * block_size_;
    if (aligned_begin >= aligned_end) return write_zeros(offset, length);
    if (offset < aligned_begin) {
      if (auto ec = write_zeros(offset, aligned_begin - offset)) return ec;
    }
    if (aligned_end < end) {
      if (auto ec = write_zeros(aligned_end, end - aligned_end)) return ec;
    }
    while (!no_zeroing_unmap_) {
      if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(aligned_begin),
                      static_cast<off_t>(aligned_end - aligned_begin)) == 0) {
        return {};
      }
      if (errno == EINTR) continue;
      // EOPNOTSUPP: the device cannot unmap with zeros; not asked again for this store.
      if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL && errno != ENODEV) return last_errno();
      no_zeroing_unmap_ = true;
    }
    uint64_t range[2] = {aligned_begin, aligned_end - aligned_begin};
    while (::ioctl(fd_, BLKZEROOUT, range) != 0) {
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == ENOTTY) {
        return write_zeros(aligned_begin, aligned_end - aligned_begin);
      }
      return last_errno();
    }
    return {};
  }

  const int fd_;
  const uint64_t size_;
  const uint32_t block_size_;
  const bool read_only_;
  const bool is_device_;
  const uint64_t write_behind_;
  // The device refused an unmap that zeroes (set once, by whichever thread saw it first).
  std::atomic<bool> no_zeroing_unmap_{false};
  // Set when the image was opened with O_DIRECT (FileStoreOptions::direct).
  std::optional<DirectIo> direct_;
};

bool valid_block_size(uint64_t block_size) { return block_size == 512 || block_size == 4096; }

// Creates a sparse image of create_size bytes. O_EXCL so that two creators never both believe the
// file is theirs (and the loser does not truncate the winner's image). Returns the descriptor, or
// -1 with errno set; EEXIST means someone else created it first.
int create_image(const std::string& path, uint64_t create_size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (::ftruncate(fd, static_cast<off_t>(create_size)) != 0) {
    int saved = errno;
    ::close(fd);
    ::unlink(path.c_str());  // it is ours and useless at the wrong size
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

std::pair<uint64_t, uint64_t> write_behind_range(uint64_t offset, uint64_t end, uint64_t window) {
  if (window == 0 || end <= offset) return {0, 0};
  const uint64_t edge = end / window * window;
  if (edge <= offset) return {0, 0};  // still inside the window it started in
  return {std::min(offset / window * window, edge - window), edge};
}

Result<std::unique_ptr<BlockStore>> open_file_store(const std::string& path,
                                                    const FileStoreOptions& options) {
  if (!valid_block_size(options.block_size)) return errno_error(EINVAL);
  if (options.create_size > static_cast<uint64_t>(std::numeric_limits<off_t>::max()) ||
      options.create_size % options.block_size != 0) {
    return errno_error(EINVAL);
  }

  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  // On a block device O_EXCL claims it, as a mount does: the open fails with EBUSY while the device
  // is mounted or held (device mapper, md, another exclusive opener), and nothing can mount it
  // while this store is open. The claim also lets fallocate and BLKZEROOUT on this descriptor run
  // without claiming the device for themselves (the kernel refuses that while another holds it).
  struct stat before;
  if (options.exclusive_lock && ::stat(path.c_str(), &before) == 0 && S_ISBLK(before.st_mode)) flags |= O_EXCL;
  ScopedFd fd(::open(path.c_str(), flags));
  // A read-only open never creates: it must not change the filesystem. The loop covers losing the
  // creation race to another process, after which the file exists and is simply opened.
  while (fd.get() < 0 && errno == ENOENT && options.create_size > 0 && !options.read_only) {
    int created = create_image(path, options.create_size);
    if (created >= 0) {
      fd.reset(created);
      break;
    }
    if (errno != EEXIST) return last_errno();
    fd.reset(::open(path.c_str(), flags));
  }
  if (fd.get() < 0) return last_errno();

  if (options.exclusive_lock && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    // Another opener holds the LUN; EBUSY is what a mount reports for a device in use.
    if (errno == EWOULDBLOCK) return errno_error(EBUSY);
    return last_errno();
  }

  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return last_errno();
  uint64_t size = 0;
  uint32_t block_size = options.block_size;
  const bool is_device = S_ISBLK(st.st_mode);
  if (is_device) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) return last_errno();
    int logical_block_size = 0;
    if (::ioctl(fd.get(), BLKSSZGET, &logical_block_size) != 0) return last_errno();
    // The device's logical block size is the unit it can write atomically and the unit
    // BLKZEROOUT takes, so it wins over what the caller asked for.
    if (!valid_block_size(static_cast<uint64_t>(logical_block_size))) return errno_error(EINVAL);
    block_size = static_cast<uint32_t>(logical_block_size);
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else {
    return errno_error(EINVAL);  // a character device, fifo or socket is not a LUN
  }
  if (size % block_size != 0) return errno_error(EINVAL);

  std::optional<DirectIoAlignment> direct;
  if (options.direct) {
    // Set on the open descriptor, so the flock and O_EXCL claim above stay as they are; the kernel
    // refuses O_DIRECT with EINVAL on a filesystem without direct I/O (ramfs, some FUSE mounts).
    const int status = ::fcntl(fd.get(), F_GETFL);
    if (status < 0) return last_errno();
    if (::fcntl(fd.get(), F_SETFL, status | O_DIRECT) != 0) {
      return errno_error(errno == EINVAL ? EOPNOTSUPP : errno);
    }
    direct = direct_io_alignment(fd.get(), is_device, block_size);
    // A direct transfer covers whole alignment units: one past the end would grow the image.
    if (size % direct->offset != 0) return errno_error(EINVAL);
  }

  return std::unique_ptr<BlockStore>(
      new FileStore(fd.release(), size, block_size, options.read_only, is_device,
                    options.write_behind, direct));
}

bool is_block_device(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

}  // namespace vlunfs::store
