// The physical LUN as a Ceph RBD image (rbd_store.h): every read, write, flush and discard is one
// librbd asynchronous request that the calling thread waits for, so any number of threads have
// requests in flight at once, as with the file store's pread/pwrite.
#include "store/rbd/rbd_store.h"

#include "store/rbd/rbd_lock.h"
#include "store/rbd/rbd_session.h"

#include <rbd/features.h>
#include <rbd/librbd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace vlunfs::store {

namespace {

bool range_ok(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// Starts one request with `start(completion)` and waits for it. Returns the request's result
// (bytes for a read, 0 for the others) or -errno.
template <typename Start>
ssize_t run_aio(Start start) {
  rbd_completion_t completion;
  if (int r = rbd_aio_create_completion(nullptr, nullptr, &completion); r < 0) return r;
  if (int r = start(completion); r < 0) {
    rbd_aio_release(completion);
    return r;
  }
  rbd_aio_wait_for_complete(completion);
  const ssize_t result = rbd_aio_get_return_value(completion);
  rbd_aio_release(completion);
  return result;
}

// What the cluster answers a client whose lock was broken: blocklisted (EBLOCKLISTED is ESHUTDOWN
// in Ceph), or, where the break did not blocklist, a refusal to write without the lock.
bool means_fenced(ssize_t r) { return r == -ESHUTDOWN || r == -EROFS; }

class RbdStore final : public BlockStore {
 public:
  RbdStore(std::unique_ptr<RadosSession> session, rbd_image_t image, RbdImageName name, uint64_t size,
           uint64_t object_size, const RbdStoreOptions& options, bool locked)
      : session_(std::move(session)), image_(image), name_(std::move(name)), size_(size), object_size_(object_size),
        block_size_(options.block_size), read_only_(options.read_only), locked_(locked),
        on_fenced_(options.on_fenced) {}
  RbdStore(const RbdStore&) = delete;
  RbdStore& operator=(const RbdStore&) = delete;
  ~RbdStore() override {
    // A fenced client's lock is someone else's now; releasing it would only be refused.
    if (locked_ && !fenced_.load()) (void)rbd_lock_release(image_);
    rbd_close(image_);
  }

  std::error_code read(uint64_t offset, std::span<std::byte> out) override {
    if (!range_ok(offset, out.size(), size_)) return errno_error(EINVAL);
    if (out.empty()) return {};
    ssize_t r = run_aio([&](rbd_completion_t c) {
      return rbd_aio_read(image_, offset, out.size(), reinterpret_cast<char*>(out.data()), c);
    });
    if (r < 0) return failure(r);
    // librbd reads holes as zeros; short only if the image shrank under us, which is no LUN's
    // behaviour: an error rather than zeros we did not read.
    if (static_cast<size_t>(r) != out.size()) return errno_error(EIO);
    return {};
  }

  std::error_code write(uint64_t offset, std::span<const std::byte> data) override {
    if (read_only_) return errno_error(EROFS);
    if (!range_ok(offset, data.size(), size_)) return errno_error(EINVAL);
    if (fenced_.load()) return errno_error(EIO);
    if (data.empty()) return {};
    ssize_t r = run_aio([&](rbd_completion_t c) {
      return rbd_aio_write(image_, offset, data.size(), reinterpret_cast<const char*>(data.data()), c);
    });
    if (r < 0) return failure(r);
    return {};
  }

  // Durable on the OSDs once the flush completes: what fsync promises (docs/rbd.md).
  std::error_code flush() override {
    if (read_only_) return {};
    if (fenced_.load()) return errno_error(EIO);
    ssize_t r = run_aio([&](rbd_completion_t c) { return rbd_aio_flush(image_, c); });
    if (r < 0) return failure(r);
    return {};
  }

  // Released and punched chunks go back to the cluster as discards, so a thin pool stays thin:
  // the whole objects inside the range are discarded (removed). librbd may skip the part of a
  // discard that covers only part of an object, and the contract is "reads as zeros", so those
  // ends are written as zeros instead (rbd_aio_write_zeroes).
  std::error_code discard(uint64_t offset, uint64_t length) override {
    if (read_only_) return errno_error(EROFS);
    if (!range_ok(offset, length, size_)) return errno_error(EINVAL);
    if (fenced_.load()) return errno_error(EIO);
    if (length == 0) return {};
    const uint64_t end = offset + length;
    const uint64_t whole_begin = (offset + object_size_ - 1) / object_size_ * object_size_;
    const uint64_t whole_end = end / object_size_ * object_size_;
    if (whole_begin >= whole_end) return zero(offset, length);
    if (offset < whole_begin) {
      if (auto ec = zero(offset, whole_begin - offset)) return ec;
    }
    if (whole_end < end) {
      if (auto ec = zero(whole_end, end - whole_end)) return ec;
    }
    ssize_t r = run_aio([&](rbd_completion_t c) {
      return rbd_aio_discard(image_, whole_begin, whole_end - whole_begin, c);
    });
    if (r < 0) return failure(r);
    return {};
  }

  uint64_t size_bytes() const override { return size_; }
  uint32_t block_size() const override { return block_size_; }

 private:
  std::error_code zero(uint64_t offset, uint64_t length) {
    ssize_t r = run_aio([&](rbd_completion_t c) { return rbd_aio_write_zeroes(image_, offset, length, c, 0, 0); });
    if (r < 0) return failure(r);
    return {};
  }

  // Once fenced, always fenced: a client the cluster has blocklisted never gets its writes back,
  // and the pool is the new holder's. Every later write fails at once with EIO.
  std::error_code failure(ssize_t r) {
    if (means_fenced(r) && !read_only_ && !fenced_.exchange(true)) {
      const std::string message =
          name_.text() + ": another client took this image's lock over and the cluster refuses this client's " +
          "writes (" + std::strerror(static_cast<int>(-r)) + "); no more writes: writers get EIO, reads go on "
          "where the cluster still answers. Unmount it; the new holder has the pool";
      if (on_fenced_) on_fenced_(message);
    }
    if (means_fenced(r)) return errno_error(EIO);
    return ceph_error(static_cast<int>(r));
  }

  std::unique_ptr<RadosSession> session_;
  rbd_image_t image_;
  const RbdImageName name_;
  const uint64_t size_;
  const uint64_t object_size_;
  const uint32_t block_size_;
  const bool read_only_;
  const bool locked_;
  const std::function<void(const std::string&)> on_fenced_;
  std::atomic<bool> fenced_{false};
};

bool valid_block_size(uint64_t block_size) { return block_size == 512 || block_size == 4096; }

// Opens the image, creating it first when asked to and missing. Returns 0 or -errno.
int open_or_create(rados_ioctx_t pool, const RbdImageName& name, const RbdStoreOptions& options, rbd_image_t* image,
                   RbdOpenReport* report) {
  int r = options.read_only ? rbd_open_read_only(pool, name.image.c_str(), image, nullptr)
                            : rbd_open(pool, name.image.c_str(), image, nullptr);
  if (r != -ENOENT || options.create_size == 0 || options.read_only) return r;
  // Exclusive lock for fencing; object map and fast diff so that `rbd du` counts what discards gave
  // back without reading every object.
  uint64_t features = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP |
                      RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;
  int order = 22;  // 4 MiB objects, Ceph's default
  r = rbd_create2(pool, name.image.c_str(), options.create_size, features, &order);
  if (r < 0 && r != -EEXIST) return r;  // EEXIST: another creator was first; open theirs
  report->created = r == 0;
  return rbd_open(pool, name.image.c_str(), image, nullptr);
}

}  // namespace

bool rbd_supported() { return true; }

Result<std::unique_ptr<BlockStore>> open_rbd_store(const RbdImageName& name, const RbdStoreOptions& options,
                                                   RbdOpenReport* report) {
  if (name.pool.empty() || name.image.empty()) {
    report->detail = "an RBD image is named rbd:POOL/IMAGE";
    return errno_error(EINVAL);
  }
  if (!valid_block_size(options.block_size) || options.create_size % options.block_size != 0) {
    return errno_error(EINVAL);
  }
  auto session = std::make_unique<RadosSession>();
  if (auto ec = session->connect(options.client, name.pool, &report->detail)) return ec;
  rbd_image_t image = nullptr;
  if (int r = open_or_create(session->pool(), name, options, &image, report); r < 0) {
    report->detail = "cannot open the image " + name.text() + ": " + std::strerror(-r) +
                     (r == -ENOENT ? " (create it with mkfs.vlunfs --size SIZE " + name.text() + ")" : "");
    return ceph_error(r);
  }
  // Closed on every failure below; the store owns it from its construction on.
  struct ImageCloser {
    rbd_image_t& image;
    ~ImageCloser() {
      if (image) rbd_close(image);
    }
  } closer{image};

  uint64_t size = 0;
  if (int r = rbd_get_size(image, &size); r < 0) return ceph_error(r);
  rbd_image_info_t info;
  if (int r = rbd_stat(image, &info, sizeof info); r < 0) return ceph_error(r);
  const uint64_t object_size = info.obj_size;
  if (size % options.block_size != 0) {
    report->detail = name.text() + ": its size is not a multiple of " + std::to_string(options.block_size) + " bytes";
    return errno_error(EINVAL);
  }
  bool locked = false;
  if (options.exclusive_lock) {
    uint64_t features = 0;
    if (int r = rbd_get_features(image, &features); r < 0) return ceph_error(r);
    if (!(features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
      report->detail = name.text() + " has no exclusive-lock feature, without which nothing fences a second "
                       "client: rbd feature enable " + name.pool + "/" + name.image + " exclusive-lock";
      return errno_error(EOPNOTSUPP);
    }
    // A read-only client cannot take the lock, and must not read a pool another is changing (as
    // a file store's flock refuses fsck -n of a mounted image): refused while anyone holds it.
    if (options.read_only) {
      report->lock_holder = describe_lock_holder(image);
      if (!report->lock_holder.empty()) {
        report->detail = name.text() + " is in use: its lock is held by " + report->lock_holder +
                         "; unmount it there first";
        return errno_error(EBUSY);
      }
      std::unique_ptr<BlockStore> store(
          new RbdStore(std::move(session), std::exchange(image, nullptr), name, size, object_size, options, false));
      return store;
    }
    if (options.break_lock) {
      if (int r = break_exclusive_lock(image, &report->broken_holder); r < 0) {
        report->detail = "cannot break the lock of " + name.text() + ": " + std::strerror(-r) +
                         (r == -EACCES || r == -EPERM ? " (client." + options.client.id +
                                                            " needs mon 'profile rbd' to blocklist)" : "");
        return ceph_error(r);
      }
    }
    // Acquired explicitly, the lock is never handed over on request: a second client that asks
    // for it is refused until this one closes the image or is taken over.
    if (int r = rbd_lock_acquire(image, RBD_LOCK_MODE_EXCLUSIVE); r < 0) {
      report->lock_holder = describe_lock_holder(image);
      if (r == -EROFS || r == -EBUSY || r == -EAGAIN) {
        report->detail = name.text() + " is in use: its lock is held by " +
                         (report->lock_holder.empty() ? std::string("another client") : report->lock_holder) +
                         "; unmount it there, or if that daemon is dead: vlunctl takeover " + name.text();
        return errno_error(EBUSY);
      }
      report->detail = "cannot take the lock of " + name.text() + ": " + std::strerror(-r);
      return ceph_error(r);
    }
    locked = true;
  }
  std::unique_ptr<BlockStore> store(
      new RbdStore(std::move(session), std::exchange(image, nullptr), name, size, object_size, options, locked));
  return store;
}

Result<std::string> break_rbd_lock(const RbdImageName& name, const CephClientOptions& client, std::string* detail) {
  RadosSession session;
  if (auto ec = session.connect(client, name.pool, detail)) return ec;
  rbd_image_t image = nullptr;
  if (int r = rbd_open(session.pool(), name.image.c_str(), &image, nullptr); r < 0) {
    *detail = "cannot open the image " + name.text() + ": " + std::strerror(-r);
    return ceph_error(r);
  }
  std::string broken;
  int r = break_exclusive_lock(image, &broken);
  rbd_close(image);
  if (r < 0) {
    *detail = "cannot break the lock of " + name.text() + ": " + std::strerror(-r) +
              (r == -EACCES || r == -EPERM ? " (client." + client.id + " needs mon 'profile rbd' to blocklist)" : "");
    return ceph_error(r);
  }
  return broken;
}

std::error_code remove_rbd_image(const RbdImageName& name, const CephClientOptions& client) {
  RadosSession session;
  std::string detail;
  if (auto ec = session.connect(client, name.pool, &detail)) return ec;
  if (int r = rbd_remove(session.pool(), name.image.c_str()); r < 0) return ceph_error(r);
  return {};
}

}  // namespace vlunfs::store
