// "Open the store named by this string": the one place where every program (vlunfs, mkfs.vlunfs,
// fsck.vlunfs, vlunctl) turns the name it was given into a physical LUN. A name is a path (an
// image file or a block device) or rbd:POOL/IMAGE (a Ceph RBD image, rbd_store.h).
#pragma once

#include "store/rbd/rbd_store.h"
#include "vlunfs/image_release.h"

#include <functional>
#include <memory>
#include <string>

namespace vlunfs::store {

struct NamedStoreOptions {
  uint32_t block_size = 512;
  bool read_only = false;
  uint64_t write_behind = 0;  // files only (FileStoreOptions::write_behind)
  bool direct = false;        // files only (FileStoreOptions::direct); refused for RBD
  ReleaseWait wait;           // how long to wait for a daemon that is letting go of the store
  // RBD only: who to be to the cluster, whether to take a dead holder's lock over (-o takeover),
  // and what to do when this client is fenced (RbdStoreOptions::on_fenced).
  CephClientOptions ceph;
  bool takeover = false;
  std::function<void(const std::string&)> on_fenced;
};

// Opens the store for exclusive use: a file or device through open_file_store_after_release
// (flock, O_EXCL); an RBD image holding its exclusive lock, or read-only refused with EBUSY while
// another client holds it. On failure, *detail says what happened in words when the store has
// something to say beyond the error (always for RBD); programs add their own advice for files.
Result<std::unique_ptr<BlockStore>> open_named_store(const std::string& name, const NamedStoreOptions& options,
                                                     std::string* detail);

// Whether `name` is an RBD name (rbd:...), e.g. to skip what only a path has (realpath, stat).
bool names_rbd_image(const std::string& name);

// Takes the Ceph options out of a -o list: ceph_conf=PATH, ceph_id=NAME, takeover. Returns the
// options it did not know, comma-separated in their order, for the program's own parser; false
// with *why for a malformed one (ceph_conf= with no value).
bool take_ceph_options(const std::string& list, CephClientOptions* ceph, bool* takeover, std::string* rest,
                       std::string* why);

}  // namespace vlunfs::store
