// A Ceph RBD image as the physical LUN (docs/rbd.md): the pool vlunfs carves vLUNs from lives in a
// Ceph cluster instead of on one machine, and the image's exclusive lock fences every other
// client, so that two daemons never write one pool and a dead daemon can be taken over.
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vlunfs::store {

// "rbd:POOL/IMAGE", the one way every program names an RBD image.
struct RbdImageName {
  std::string pool;
  std::string image;
  std::string text() const { return "rbd:" + pool + "/" + image; }
};

// The image named by `text`, or nullopt if `text` does not start with "rbd:" (a path). A text that
// starts with "rbd:" but is not POOL/IMAGE gives an image with an empty pool or name.
std::optional<RbdImageName> parse_rbd_name(std::string_view text);

// Who this program is to the cluster: -o ceph_conf=PATH, -o ceph_id=NAME (client.NAME's key is
// found through the conf's keyring setting).
struct CephClientOptions {
  std::string conf_path = "/etc/ceph/ceph.conf";
  std::string id = "admin";
};

struct RbdStoreOptions {
  CephClientOptions client;
  uint32_t block_size = 512;  // 4096 or 512; the image's size must be a multiple of it
  uint64_t create_size = 0;   // create the image with this size if it does not exist
  bool read_only = false;
  // Fencing: hold the image's exclusive lock for as long as the store is open; EBUSY if another
  // client holds it (RbdOpenReport::lock_holder says who).
  bool exclusive_lock = false;
  // Takeover: break any other client's lock first, which blocklists that client (its writes fail
  // from then on). Only for a holder known to be dead or to be fenced off on purpose.
  bool break_lock = false;
  // Called once, from an I/O thread, when the cluster refuses this client's writes because another
  // client took the lock over: the store then fails every write and flush with EIO.
  std::function<void(const std::string&)> on_fenced;
};

// What an open found out, for the messages of programs.
struct RbdOpenReport {
  bool created = false;      // the image did not exist and was created with create_size
  std::string lock_holder;   // who holds the lock, when the open failed with EBUSY
  std::string broken_holder; // whose lock break_lock broke
  std::string detail;        // the step that failed, in words ("cannot connect to the cluster ...")
};

Result<std::unique_ptr<BlockStore>> open_rbd_store(const RbdImageName& name, const RbdStoreOptions& options,
                                                   RbdOpenReport* report);

// Takeover without opening: breaks the exclusive lock of whoever holds it (blocklisting that
// client). Returns the holder it broke, or an empty string if nobody held it.
Result<std::string> break_rbd_lock(const RbdImageName& name, const CephClientOptions& client, std::string* detail);

// Removes an image (mkfs removes one it created and could not format).
std::error_code remove_rbd_image(const RbdImageName& name, const CephClientOptions& client);

// Whether this build can open RBD images (built with librbd, VLUNFS_WITH_RBD).
bool rbd_supported();

}  // namespace vlunfs::store
