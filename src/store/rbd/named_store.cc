// Opening a store by name (named_store.h).
#include "store/rbd/named_store.h"

#include <chrono>
#include <sstream>
#include <thread>

namespace vlunfs::store {

namespace {

// A daemon that was just unmounted keeps its lock until it has written its last checkpoint, some
// tens of milliseconds (docs/reliability.md "Unmount"); a lock held past this is someone's.
constexpr std::chrono::milliseconds kRbdReleaseWait{3000};
constexpr std::chrono::milliseconds kRbdRetryInterval{250};

Result<std::unique_ptr<BlockStore>> open_rbd_named(const RbdImageName& image, const NamedStoreOptions& options,
                                                   std::string* detail) {
  RbdStoreOptions ro;
  ro.client = options.ceph;
  ro.block_size = options.block_size;
  ro.read_only = options.read_only;
  ro.exclusive_lock = true;
  ro.break_lock = options.takeover;
  ro.on_fenced = options.on_fenced;
  const auto deadline = std::chrono::steady_clock::now() + std::min(options.wait.limit, kRbdReleaseWait);
  bool said = false;
  for (;;) {
    RbdOpenReport report;
    auto opened = open_rbd_store(image, ro, &report);
    if (opened || opened.error().value() != EBUSY || std::chrono::steady_clock::now() >= deadline) {
      *detail = report.detail;
      return opened;
    }
    if (!said && options.wait.on_wait) options.wait.on_wait();
    said = true;
    std::this_thread::sleep_for(kRbdRetryInterval);
  }
}

// What to say when an image will not open with O_DIRECT (FileStoreOptions::direct); empty for the
// errors that have nothing to do with it.
std::string direct_refusal(const std::string& name, std::error_code error) {
  if (error.value() == EOPNOTSUPP) {
    return name + ": the filesystem under it refuses O_DIRECT (-o image_direct); mount without "
                  "-o image_direct, or move the image to a filesystem with direct I/O (ext4, xfs, btrfs) "
                  "or use a block device";
  }
  if (error.value() == EINVAL) {
    return name + ": its size is not a multiple of 512 bytes or of its filesystem's direct I/O alignment "
                  "(-o image_direct); mount without -o image_direct";
  }
  return {};
}

}  // namespace

bool names_rbd_image(const std::string& name) { return parse_rbd_name(name).has_value(); }

Result<std::unique_ptr<BlockStore>> open_named_store(const std::string& name, const NamedStoreOptions& options,
                                                     std::string* detail) {
  if (auto image = parse_rbd_name(name)) {
    if (options.direct) {
      *detail = name + ": -o image_direct is for image files and block devices; librbd has no page cache to bypass";
      return errno_error(EINVAL);
    }
    return open_rbd_named(*image, options, detail);
  }
  FileStoreOptions fo;
  fo.block_size = options.block_size;
  fo.read_only = options.read_only;
  fo.write_behind = options.write_behind;
  fo.direct = options.direct;
  auto opened = open_file_store_after_release(name, fo, options.wait);
  if (!opened && options.direct) *detail = direct_refusal(name, opened.error());
  return opened;
}

bool take_ceph_options(const std::string& list, CephClientOptions* ceph, bool* takeover, std::string* rest,
                       std::string* why) {
  std::istringstream in(list);
  std::string option;
  rest->clear();
  while (std::getline(in, option, ',')) {
    if (option.starts_with("ceph_conf=") || option.starts_with("ceph_id=")) {
      const std::string value = option.substr(option.find('=') + 1);
      if (value.empty()) {
        *why = "-o " + option + ": give a value (ceph_conf=/etc/ceph/ceph.conf, ceph_id=admin)";
        return false;
      }
      (option.starts_with("ceph_conf=") ? ceph->conf_path : ceph->id) = value;
    } else if (option == "takeover") {
      *takeover = true;
    } else if (!option.empty()) {
      *rest += (rest->empty() ? "" : ",") + option;
    }
  }
  return true;
}

}  // namespace vlunfs::store
