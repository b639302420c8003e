// Mount and unmount: the device and its metadata are opened (open, open_store), the AFU backend is
// made and the allocator rebuilt from the chunk maps (start), and everything is made durable again
// at the end (sync_all, shutdown). Fork adoption for the daemon is here too (spec §6, pitfall 21).
#include "fs/filesystem.h"

#include "fs/log.h"
#include "store/rbd/named_store.h"
#include "vlunfs/image_release.h"
#include "vlunfs/sislite.h"

#include <unistd.h>

#include <cstring>

namespace vlunfs::fs {

Result<std::unique_ptr<Filesystem>> Filesystem::open(const std::string& device, const MountOptions& options,
                                                      std::string* why) {
  store::NamedStoreOptions so;
  so.block_size = 512;  // the device's own granularity; the filesystem's block size is in the superblock
  so.read_only = options.read_only;
  so.write_behind = options.write_behind;
  so.direct = options.image_direct;
  so.ceph = options.ceph;
  so.takeover = options.takeover;
  so.on_fenced = [](const std::string& message) { log_error("%s", message.c_str()); };
  // A daemon that was just unmounted may still be writing its last checkpoint: wait for it.
  so.wait.on_wait = [&] { log_info("waiting for the vlunfs daemon that is releasing %s...", device.c_str()); };
  std::string detail;
  auto dev = store::open_named_store(device, so, &detail);
  if (!dev) {
    int e = dev.error().value();
    if (!detail.empty()) {
      *why = detail;
    } else if (e == EBUSY) {
      if (auto mountpoint = store::vlunfs_mountpoint_of(device)) {
        *why = device + " is in use: it is mounted on " + *mountpoint + "; unmount it first (umount " + *mountpoint + ")";
      } else {
        *why = device + " is in use: another vlunfs daemon (or vlunctl) has it open; unmount it first";
      }
    } else if (e == EINVAL) {
      *why = device + ": size is not a multiple of 512 bytes; is this a vlunfs image?";
    } else {
      *why = device + ": " + dev.error().message();
    }
    return dev.error();
  }
  return open_store(std::move(dev).value(), options, why, device);
}

Result<std::unique_ptr<Filesystem>> Filesystem::open_store(std::unique_ptr<store::BlockStore> device,
                                                            const MountOptions& options, std::string* why,
                                                            const std::string& name) {
  std::unique_ptr<Filesystem> fs(new Filesystem());
  fs->options_ = options;
  fs->device_ = std::move(device);
  fs->device_path_ = name;
  meta::OpenOptions mo;
  mo.read_only = options.read_only;
  meta::OpenReport report;
  auto meta = meta::MetaStore::open(*fs->device_, mo, &report);
  if (!meta) {
    *why = meta.error().within(name).message;
    return meta.error().code;
  }
  fs->meta_ = std::move(meta).value();
  fs->geometry_ = fs->meta_->geometry();
  // Every mount leaves a record in the journal and a clean unmount ends with a checkpoint that
  // empties it: records at mount mean the last daemon stopped without unmounting.
  fs->unclean_ = report.records_replayed > 0;
  for (const meta::OpenProblem& p : report.problems) log_warning("%s: %s", name.c_str(), p.text.c_str());
  if (report.fell_back) log_warning("%s: the newest metadata was unusable; mounted the previous checkpoint", name.c_str());
  fs->data_lun_ = store::make_region_store(*fs->device_, fs->geometry_.data_offset, fs->geometry_.data_bytes,
                                           fs->geometry_.block_size);
  return fs;
}

std::error_code Filesystem::start(const client::AfuFactory& make_afu, std::string* why) {
  auto backend = make_afu(*data_lun_);
  if (!backend) {
    *why = "cannot start the AFU backend: " + backend.error().message();
    return backend.error();
  }
  client::LunOptions lo;
  lo.chunk_shift = geometry_.chunk_shift;
  lo.block_size = geometry_.block_size;
  lo.read_only = options_.read_only;
  std::memcpy(lo.wwid.data(), geometry_.uuid, 16);
  lo.log_error = [](const std::string& message) { log_error("%s", message.c_str()); };
  lo.command_counts = &metrics_.afu_commands();
  auto lun = client::LunClient::open(std::move(backend).value(), lo);
  if (!lun) {
    *why = lun.error().message;
    return lun.error().code;
  }
  lun_ = std::move(lun).value();
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  for (auto& [ino, inode] : ns.inodes) {
    for (uint64_t e : inode.lxt) {
      if (maps_zero(e) && (e & sisl::LXT_PERM_WRITE)) {
        *why = "inode " + std::to_string(ino) + " maps the zero chunk writable; run vlunctl fsck";
        return errno_error(EUCLEAN);
      }
    }
  }
  // The allocator is rebuilt from the chunk maps alone (design decision 3).
  for (auto& [ino, inode] : ns.inodes) {
    if (file_type(inode.mode) != S_IFREG || inode.lxt.empty()) continue;
    if (auto ec = lun_->adopt(inode.lxt)) {
      *why = "inode " + std::to_string(ino) +
             ": its chunk map names a chunk outside the data area or shared too often; run vlunctl fsck";
      return ec;
    }
  }
  // So is the share reserve: derived from the same maps (share_reserve.h).
  reserve_.set_zero_chunk(lun_->zero_aun());
  reserve_.rebuild(ns);
  if (const uint64_t free = lun_->free_chunks(); reserve_.reserved() > free) {
    log_warning("%s: thick vLUNs may need %llu chunks to break their shares, but only %llu are free: writes to "
                "shared chunks may fail with ENOSPC; free some chunks (this image was shared before the reserve existed)",
                device_path_.c_str(), static_cast<unsigned long long>(reserve_.reserved()),
                static_cast<unsigned long long>(free));
  }
  std::vector<uint64_t> orphans;
  for (auto& [ino, inode] : ns.inodes) {
    if (file_type(inode.mode) != S_IFREG) continue;
    auto file = new_vlun_locked(ino, inode.size, inode.lxt, false);
    if (!file) {
      *why = "cannot open the vLUN of inode " + std::to_string(ino) + ": " + file.error().message();
      return file.error();
    }
    file.value()->thin = inode.flags & meta::INODE_FLAG_THIN;
    file.value()->read_only = inode.flags & meta::INODE_FLAG_READONLY;
    if (inode.nlink == 0) orphans.push_back(ino);
  }
  started_ = true;
  std::vector<uint64_t> seqs;
  if (!options_.read_only) {
    if (unclean_) {
      // After a crash, chunks may have been taken and written (a copy-on-write copy, a grow)
      // without their record reaching the journal: they are free again and must read as zeros.
      if (auto ec = lun_->zero_free_chunks()) log_warning("zeroing free chunks after a crash: %s", ec.message().c_str());
    }
    // Marks this mount in the journal (a no-op change of the root).
    meta::SetAttrRecord mark;
    mark.ino = meta::ROOT_INO;
    if (auto seq = commit(mark)) seqs.push_back(seq.value());
  }
  // Files unlinked while open when the daemon last stopped: nobody can have them open now.
  for (uint64_t ino : orphans) maybe_free_locked(ino, &seqs);
  lock.unlock();
  if (!seqs.empty()) {
    if (auto ec = durable(seqs.back())) {
      *why = "cannot write the metadata journal: " + ec.message();
      return ec;
    }
  }
  return {};
}

void Filesystem::shutdown() {
  if (!started_) return;
  (void)sync_all();
  std::unique_lock lock(ns_mu_);
  vluns_.clear();  // each vLUN's handle is checked in; the files live on in the metadata
  lun_->shutdown();
  started_ = false;
}

Filesystem::~Filesystem() { shutdown(); }

std::error_code Filesystem::sync_all() {
  if (options_.read_only || !started_) return {};
  std::vector<FileVlun*> dirty;
  {
    std::unique_lock lock(ns_mu_);
    for (auto& [ino, file] : vluns_) {
      if (file->size_dirty) {
        file->opens++;  // pinned as by an open: a concurrent last close of an unlinked file must not free it
        dirty.push_back(file.get());
      }
    }
  }
  uint64_t seq = 0;
  std::error_code failed;
  for (FileVlun* f : dirty) {
    std::unique_lock io(f->io_mu);
    if (!failed) failed = persist_size(f, &seq);
  }
  std::unique_lock lock(ns_mu_);
  std::vector<uint64_t> seqs;
  for (FileVlun* f : dirty) {
    if (--f->opens == 0) maybe_free_locked(f->ino, &seqs);
  }
  if (failed) return failed;
  if (auto ec = meta_->checkpoint()) {
    log_error("checkpoint failed: %s", ec.message().c_str());
    return ec;
  }
  return {};
}

std::error_code Filesystem::adopt_parent_contexts(std::string* why) {
  std::unique_lock lock(ns_mu_);
  const pid_t parent = getppid();
  if (auto err = lun_->adopt_parent_contexts()) {
    *why = err.message;
    return err.code;
  }
  // Nothing to say to the administrator either way: the daemon carries on with the parent's handles.
  if (const size_t n = lun_->context_count()) {
    log_debug("took over %zu AFU context(s) from the process that mounted (%d)", n, static_cast<int>(parent));
  } else {
    log_debug("the process that mounted (%d) had no AFU context open, so there was none to take over",
              static_cast<int>(parent));
  }
  return {};
}

}  // namespace vlunfs::fs
