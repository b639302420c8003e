#include "fs/filesystem.h"

#include "fs/log.h"
#include "vlunfs/sislite.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

namespace vlunfs::fs {

namespace {

uint32_t file_type(uint32_t mode) { return mode & S_IFMT; }

// A buffer aligned for the AFU's data EA (16 bytes; we use a page), reused per thread.
std::byte* bounce_buffer(size_t bytes) {
  struct Buffer {
    std::byte* p = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  if (buf.size < bytes) {
    std::free(buf.p);
    buf.size = (bytes + 4095) & ~size_t{4095};
    buf.p = static_cast<std::byte*>(std::aligned_alloc(4096, buf.size));
    if (!buf.p) buf.size = 0;
  }
  return buf.p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Mount and unmount

Result<std::unique_ptr<Filesystem>> Filesystem::open(const std::string& device, const MountOptions& options,
                                                      std::string* why) {
  store::FileStoreOptions fo;
  fo.block_size = 512;  // the device's own granularity; the filesystem's block size is in the superblock
  fo.read_only = options.read_only;
  fo.exclusive_lock = true;
  fo.write_behind = options.write_behind;
  auto dev = store::open_file_store(device, fo);
  // A daemon that was just unmounted may still be writing its last checkpoint: give it a moment.
  for (int i = 0; i < 50 && !dev && dev.error().value() == EBUSY; ++i) {
    usleep(100 * 1000);
    dev = store::open_file_store(device, fo);
  }
  if (!dev) {
    int e = dev.error().value();
    if (e == EBUSY) {
      *why = device + " is in use: another vlunfs daemon (or vlunctl) has it open; unmount it first";
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
  std::string meta_why;
  auto meta = meta::MetaStore::open(*fs->device_, mo, &report, &meta_why);
  if (!meta) {
    *why = name + ": " + (meta_why.empty() ? meta.error().message() : meta_why);
    return meta.error();
  }
  fs->meta_ = std::move(meta).value();
  fs->geometry_ = fs->meta_->geometry();
  // Every mount leaves a record in the journal and a clean unmount ends with a checkpoint that
  // empties it: records at mount mean the last daemon stopped without unmounting.
  fs->unclean_ = report.records_replayed > 0;
  for (const std::string& p : report.problems) log_warning("%s: %s", name.c_str(), p.c_str());
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
  auto lun = client::LunClient::open(std::move(backend).value(), lo, why);
  if (!lun) return lun.error();
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

// ---------------------------------------------------------------------------------------------
// Helpers

int64_t Filesystem::now_ns() const {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::error_code Filesystem::writable() const {
  return options_.read_only ? errno_error(EROFS) : std::error_code{};
}

std::error_code Filesystem::check_name(const std::string& name) const {
  if (name.size() > meta::MAX_NAME) return errno_error(ENAMETOOLONG);
  if (name.empty() || name.find('/') != std::string::npos) return errno_error(EINVAL);
  return {};
}

Result<uint64_t> Filesystem::commit(const meta::Record& record) {
  auto seq = meta_->append(record);
  if (!seq && seq.error().value() == EIO) log_error("metadata journal write failed; further changes are refused");
  return seq;
}

std::error_code Filesystem::durable(uint64_t seq) {
  if (auto ec = meta_->wait_durable(seq)) {
    log_error("metadata journal flush failed: %s", ec.message().c_str());
    return ec;
  }
  return {};
}

Attr Filesystem::attr_of(const meta::Inode& inode) const {
  Attr a;
  struct stat& st = a.st;
  st.st_ino = inode.ino;
  st.st_mode = inode.mode;
  st.st_nlink = inode.nlink;
  st.st_uid = inode.uid;
  st.st_gid = inode.gid;
  st.st_size = static_cast<off_t>(inode.size);
  st.st_blksize = kPreferredIo;
  int64_t mtime = inode.mtime_ns;
  if (file_type(inode.mode) == S_IFREG) {
    auto it = vluns_.find(inode.ino);
    // Provisioned chunks: the zero chunk a thin vLUN maps for unwritten space takes no room.
    uint64_t chunks = static_cast<uint64_t>(
        std::count_if(inode.lxt.begin(), inode.lxt.end(), [&](uint64_t e) { return !maps_zero(e); }));
    if (it != vluns_.end()) {
      st.st_size = static_cast<off_t>(it->second->size.load());
      if (it->second->size_dirty) mtime = std::max(mtime, it->second->mtime_ns.load());
    }
    st.st_blocks = static_cast<blkcnt_t>(chunks * geometry_.chunk_bytes() / 512);
  } else if (file_type(inode.mode) == S_IFLNK) {
    st.st_size = static_cast<off_t>(inode.symlink.size());
  } else {
    st.st_size = 4096;
    st.st_blocks = 0;
  }
  auto to_ts = [](int64_t ns) {
    struct timespec ts;
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    return ts;
  };
  st.st_atim = to_ts(inode.atime_ns);
  st.st_mtim = to_ts(mtime);
  st.st_ctim = to_ts(std::max(inode.ctime_ns, mtime));
  return a;
}

// ---------------------------------------------------------------------------------------------
// vLUN life cycle (ns_mu_ held)

Result<FileVlun*> Filesystem::new_vlun_locked(uint64_t ino, uint64_t size, const std::vector<uint64_t>& lxt,
                                              bool fresh) {
  auto vlun = fresh ? lun_->create_vlun(ino) : lun_->open_vlun(ino, lxt);
  if (!vlun) return vlun.error();
  auto file = std::make_unique<FileVlun>();
  file->ino = ino;
  file->vlun = std::move(vlun).value();
  file->size = size;
  file->chunks = lxt.size();
  FileVlun* raw = file.get();
  vluns_[ino] = std::move(file);
  return raw;
}

// RELEASE: the chunks go back to the pool, zeroed when their last owner lets go.
std::error_code Filesystem::release_vlun_locked(uint64_t ino) {
  auto it = vluns_.find(ino);
  if (it == vluns_.end()) return {};
  if (auto ec = it->second->vlun->release()) return ec;
  vluns_.erase(it);
  return {};
}

// An inode with no name left and nobody holding it open is freed: RELEASE, then its record.
bool Filesystem::maybe_free_locked(uint64_t ino, std::vector<uint64_t>* seqs, bool defer) {
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode || inode->nlink != 0) return false;
  auto it = vluns_.find(ino);
  if (it != vluns_.end()) {
    if (it->second->opens > 0) return false;  // freed at the last release
    // The name's removal must be durable before RELEASE zeroes the chunks: a crash in between
    // would leave the file in place with its data gone. (If the flush fails, the next mount frees it.)
    // A vLUN without chunks of its own (empty, or thin and never written) loses nothing to RELEASE,
    // and needs no wait.
    const bool owns_chunks =
        std::any_of(inode->lxt.begin(), inode->lxt.end(), [this](uint64_t entry) { return !maps_zero(entry); });
    if (owns_chunks && !seqs->empty()) {
      if (defer) return true;
      if (durable(seqs->back())) return false;
    }
    if (auto ec = release_vlun_locked(ino)) {
      log_error("inode %llu: RELEASE failed (%s); its chunks stay allocated until the next mount",
                static_cast<unsigned long long>(ino), ec.message().c_str());
      return false;
    }
  }
  auto seq = commit(meta::FreeRecord{ino});
  if (seq) seqs->push_back(seq.value());
  return false;
}

std::error_code Filesystem::finish_removal(std::unique_lock<std::shared_mutex>& lock, uint64_t deferred,
                                          std::vector<uint64_t>& seqs) {
  lock.unlock();
  // Other removals append and wait meanwhile, and share this flush.
  if (auto ec = durable(seqs.back())) return ec;
  if (deferred == 0) return {};
  lock.lock();
  // Checked again: nothing can give the inode a name or an open without one, but it costs nothing.
  maybe_free_locked(deferred, &seqs);
  lock.unlock();
  return durable(seqs.back());
}

// ---------------------------------------------------------------------------------------------
// Namespace operations

Result<Attr> Filesystem::lookup(uint64_t parent, const std::string& name) {
  if (name.size() > meta::MAX_NAME) return errno_error(ENAMETOOLONG);
  std::shared_lock lock(ns_mu_);
  const meta::Inode* dir = meta_->ns().find(parent);
  if (!dir) return errno_error(ENOENT);
  if (file_type(dir->mode) != S_IFDIR) return errno_error(ENOTDIR);
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return errno_error(ENOENT);
  const meta::Inode* child = meta_->ns().find(it->second);
  if (!child) return errno_error(EIO);
  return attr_of(*child);
}

Result<Attr> Filesystem::getattr(uint64_t ino) {
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  return attr_of(*inode);
}

Result<Attr> Filesystem::make_node(uint64_t parent, const std::string& name, uint32_t mode,
                                   const Credentials& who, const std::string& symlink) {
  if (auto ec = writable()) return ec;
  if (auto ec = check_name(name)) return ec;
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  const meta::Inode* dir = ns.find(parent);
  if (!dir) return errno_error(ENOENT);
  if (file_type(dir->mode) != S_IFDIR) return errno_error(ENOTDIR);
  if (dir->entries.count(name)) return errno_error(EEXIST);
  meta::CreateRecord rec;
  rec.parent = parent;
  rec.name = name;
  rec.ino = ns.next_ino;
  rec.mode = mode;
  rec.uid = who.uid;
  // Set-group-ID directories pass their group on (as ext4 does).
  rec.gid = (dir->mode & S_ISGID) ? dir->gid : who.gid;
  if ((dir->mode & S_ISGID) && file_type(mode) == S_IFDIR) rec.mode |= S_ISGID;
  rec.time_ns = now_ns();
  rec.symlink = symlink;
  FileVlun* file = nullptr;
  if (file_type(mode) == S_IFREG) {
    auto created = new_vlun_locked(rec.ino, 0, {}, true);
    if (!created) return created.error();
    file = created.value();
  }
  auto seq = commit(rec);
  if (!seq) {
    if (file) (void)release_vlun_locked(rec.ino);
    return seq.error();
  }
  if (file && options_.thin) {
    meta::SetAttrRecord flags;
    flags.ino = rec.ino;
    flags.valid = meta::SET_FLAGS;
    flags.flags = meta::INODE_FLAG_THIN;
    if (auto s2 = commit(flags)) {
      seq = s2;
      file->thin = true;
    }
  }
  Attr attr = attr_of(*ns.find(rec.ino));
  lock.unlock();
  if (auto ec = durable(seq.value())) return ec;
  return attr;
}

Result<Attr> Filesystem::create(uint64_t parent, const std::string& name, uint32_t mode, const Credentials& who) {
  if (file_type(mode) != S_IFREG) return errno_error(EPERM);  // device nodes, fifos, sockets
  return make_node(parent, name, mode, who, "");
}

Result<Attr> Filesystem::mkdir(uint64_t parent, const std::string& name, uint32_t mode, const Credentials& who) {
  return make_node(parent, name, S_IFDIR | (mode & 07777), who, "");
}

Result<Attr> Filesystem::symlink(uint64_t parent, const std::string& name, const std::string& target,
                                 const Credentials& who) {
  if (target.size() > meta::MAX_SYMLINK) return errno_error(ENAMETOOLONG);
  return make_node(parent, name, S_IFLNK | 0777, who, target);
}

Result<Attr> Filesystem::link(uint64_t ino, uint64_t new_parent, const std::string& new_name) {
  if (auto ec = writable()) return ec;
  if (auto ec = check_name(new_name)) return ec;
  std::unique_lock lock(ns_mu_);
  auto seq = commit(meta::LinkRecord{ino, new_parent, new_name, now_ns()});
  if (!seq) return seq.error();
  Attr attr = attr_of(*meta_->ns().find(ino));
  lock.unlock();
  if (auto ec = durable(seq.value())) return ec;
  return attr;
}

Result<std::string> Filesystem::readlink(uint64_t ino) {
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  if (file_type(inode->mode) != S_IFLNK) return errno_error(EINVAL);
  return inode->symlink;
}

// unlink and rmdir: one name goes; an inode left with none and not open is freed.
std::error_code Filesystem::remove_name(uint64_t parent, const std::string& name, bool directory) {
  if (auto ec = writable()) return ec;
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  const meta::Inode* dir = ns.find(parent);
  if (!dir) return errno_error(ENOENT);
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return errno_error(ENOENT);
  const uint64_t ino = it->second;
  const meta::Inode* child = ns.find(ino);
  const bool is_dir = child && file_type(child->mode) == S_IFDIR;
  if (is_dir != directory) return errno_error(directory ? ENOTDIR : EISDIR);
  auto seq = commit(meta::UnlinkRecord{parent, name, now_ns()});
  if (!seq) return seq.error();
  std::vector<uint64_t> seqs{seq.value()};
  const bool deferred = !directory && maybe_free_locked(ino, &seqs, /*defer=*/true);
  return finish_removal(lock, deferred ? ino : 0, seqs);
}

std::error_code Filesystem::unlink(uint64_t parent, const std::string& name) { return remove_name(parent, name, false); }

std::error_code Filesystem::rmdir(uint64_t parent, const std::string& name) { return remove_name(parent, name, true); }

std::error_code Filesystem::rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                                   const std::string& new_name, unsigned flags) {
  if (auto ec = writable()) return ec;
  if (auto ec = check_name(new_name)) return ec;
  uint32_t rflags = 0;
  if (flags & RENAME_NOREPLACE) rflags |= meta::RENAME_FLAG_NOREPLACE;
  if (flags & RENAME_EXCHANGE) rflags |= meta::RENAME_FLAG_EXCHANGE;
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) return errno_error(EINVAL);
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  uint64_t replaced = 0;
  if (const meta::Inode* dst_dir = ns.find(new_parent)) {
    auto it = dst_dir->entries.find(new_name);
    if (it != dst_dir->entries.end()) replaced = it->second;
  }
  auto seq = commit(meta::RenameRecord{parent, name, new_parent, new_name, rflags, now_ns()});
  if (!seq) return seq.error();
  std::vector<uint64_t> seqs{seq.value()};
  const bool deferred =
      replaced && !(rflags & meta::RENAME_FLAG_EXCHANGE) && maybe_free_locked(replaced, &seqs, /*defer=*/true);
  return finish_removal(lock, deferred ? replaced : 0, seqs);
}

Result<std::vector<DirEntry>> Filesystem::readdir(uint64_t ino) {
  std::shared_lock lock(ns_mu_);
  const meta::Namespace& ns = meta_->ns();
  const meta::Inode* dir = ns.find(ino);
  if (!dir) return errno_error(ENOENT);
  if (file_type(dir->mode) != S_IFDIR) return errno_error(ENOTDIR);
  std::vector<DirEntry> out;
  out.reserve(dir->entries.size() + 2);
  out.push_back({".", ino, S_IFDIR});
  out.push_back({"..", dir->parent ? dir->parent : ino, S_IFDIR});
  for (const auto& [name, child] : dir->entries) {
    const meta::Inode* c = ns.find(child);
    out.push_back({name, child, c ? c->mode : 0});
  }
  return out;
}

Result<Attr> Filesystem::setattr(uint64_t ino, const struct stat& attr, int to_set, FileVlun* open_file) {
  if (auto ec = writable()) return ec;
  const int64_t now = now_ns();
  if (to_set & FUSE_SET_ATTR_SIZE) {
    FileVlun* file = open_file;
    if (!file) {
      std::shared_lock lock(ns_mu_);
      const meta::Inode* inode = meta_->ns().find(ino);
      if (!inode) return errno_error(ENOENT);
      if (file_type(inode->mode) == S_IFDIR) return errno_error(EISDIR);
      auto it = vluns_.find(ino);
      if (it == vluns_.end()) return errno_error(EINVAL);
      file = it->second.get();
    }
    if (attr.st_size < 0) return errno_error(EINVAL);
    if (file->read_only) return errno_error(EPERM);  // a snapshot keeps its size
    std::unique_lock io(file->io_mu);
    auto r = resize_locked(file, static_cast<uint64_t>(attr.st_size), false);
    if (!r) return r.error();
    if (auto ec = durable(r.value())) return ec;
  }
  meta::SetAttrRecord rec;
  rec.ino = ino;
  if (to_set & FUSE_SET_ATTR_MODE) {
    rec.valid |= meta::SET_MODE;
    rec.mode = attr.st_mode;
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    rec.valid |= meta::SET_UID;
    rec.uid = attr.st_uid;
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    rec.valid |= meta::SET_GID;
    rec.gid = attr.st_gid;
  }
  auto ns_of = [](const struct timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; };
  if (to_set & FUSE_SET_ATTR_ATIME) {
    rec.valid |= meta::SET_ATIME;
    rec.atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? now : ns_of(attr.st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME) {
    rec.valid |= meta::SET_MTIME;
    rec.mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? now : ns_of(attr.st_mtim);
  }
  if (rec.valid != 0 || (to_set & FUSE_SET_ATTR_CTIME)) {
    rec.valid |= meta::SET_CTIME;
    rec.ctime_ns = (to_set & FUSE_SET_ATTR_CTIME) ? ns_of(attr.st_ctim) : now;
  }
  std::unique_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  if (rec.valid & meta::SET_MODE) rec.mode = file_type(inode->mode) | (rec.mode & 07777);
  if (rec.valid & meta::SET_MTIME) {
    // An explicit mtime replaces whatever writes left pending.
    auto it = vluns_.find(ino);
    if (it != vluns_.end()) it->second->mtime_ns = rec.mtime_ns;
  }
  uint64_t seq = 0;
  if (rec.valid != 0) {
    auto s = commit(rec);
    if (!s) return s.error();
    seq = s.value();
  }
  Attr result = attr_of(*meta_->ns().find(ino));
  lock.unlock();
  if (seq) {
    if (auto ec = durable(seq)) return ec;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Sizes and chunks

Result<uint64_t> Filesystem::resize_locked(FileVlun* file, uint64_t new_size, bool keep_size_chunks_only) {
  const uint64_t chunk_bytes = geometry_.chunk_bytes();
  const uint64_t old_size = file->size;
  const uint64_t old_chunks = file->chunks;
  uint64_t want = keep_size_chunks_only ? std::max(old_chunks, (new_size + chunk_bytes - 1) / chunk_bytes)
                                        : (new_size + chunk_bytes - 1) / chunk_bytes;
  if (new_size > (uint64_t{1} << 62) || want > meta::max_lxt_entries(geometry_)) return errno_error(EFBIG);
  const uint64_t final_size = keep_size_chunks_only ? old_size : new_size;
  // Bytes between the old end and the new one read as zeros, whatever the chunk held before (a
  // shrink leaves stale bytes past the end; new chunks are zero already). Zeroed and flushed
  // before the new size is journaled: no power cut may keep the size and lose the zeros.
  if (final_size > old_size && std::min(final_size, old_chunks * chunk_bytes) > old_size) {
    if (auto ec = zero_bytes(file, old_size, std::min(final_size, old_chunks * chunk_bytes) - old_size)) return ec;
    if (lun_->synchronize_cache()) return errno_error(EIO);
  }
  std::unique_lock lock(ns_mu_);
  std::vector<uint64_t> lxt;
  uint64_t committed = 0;  // a shrink's record, journaled before the chunks go
  if (want > old_chunks && file->thin) {
    // Thin: new chunks map the zero chunk read-only; a first write allocates (make_writable).
    std::vector<uint64_t> zeros(want - old_chunks, zero_entry());
    if (auto ec = file->vlun->extend(zeros)) {
      // Published with a failed SYNC: cut them off again (zero-chunk entries free nothing).
      if (ec == std::errc::resource_unavailable_try_again) (void)file->vlun->resize(old_chunks);
      return ec;
    }
    lxt.assign(old_chunks, 0);
    lxt.insert(lxt.end(), zeros.begin(), zeros.end());
  } else if (want != old_chunks) {
    if (want < old_chunks) {
      // A shrink is durable before VLUN_RESIZE zeroes the chunks it gives back: a crash in
      // between must not leave the old size with a zeroed tail.
      auto cut = commit(meta::ResizeRecord{file->ino, final_size, static_cast<uint32_t>(want),
                                           static_cast<uint32_t>(want), {}, now_ns()});
      if (!cut) return cut.error();
      if (auto ec = durable(cut.value())) return ec;
      committed = cut.value();
    }
    // All or nothing, undone by the vLUN itself if it cannot be had whole.
    auto table = file->vlun->resize(want);
    if (!table) return table.error();
    lxt = std::move(table).value();
  }
  meta::ResizeRecord rec;
  rec.ino = file->ino;
  rec.size = final_size;
  rec.lxt_count = static_cast<uint32_t>(want);
  rec.first_index = static_cast<uint32_t>(std::min(old_chunks, want));
  if (want > old_chunks) rec.entries.assign(lxt.begin() + static_cast<std::ptrdiff_t>(old_chunks), lxt.end());
  rec.time_ns = now_ns();
  if (file->size_dirty) rec.time_ns = std::max(rec.time_ns, file->mtime_ns.load());
  auto seq = committed ? Result<uint64_t>(committed) : commit(rec);
  if (!seq) {
    // The journal refused the change: give the chunks (or the thin entries) back so memory
    // matches the disk.
    if (want > old_chunks) (void)file->vlun->resize(old_chunks);
    return seq.error();
  }
  file->chunks = want;
  file->size = final_size;
  file->size_dirty = false;
  lock.unlock();
  return seq.value();
}

std::error_code Filesystem::persist_size(FileVlun* file, uint64_t* seq_out, bool wait) {
  std::unique_lock lock(ns_mu_);
  if (!file->size_dirty) return {};
  const meta::Inode* inode = meta_->ns().find(file->ino);
  if (!inode) return {};
  meta::ResizeRecord rec;
  rec.ino = file->ino;
  rec.size = file->size;
  rec.lxt_count = static_cast<uint32_t>(inode->lxt.size());
  rec.first_index = rec.lxt_count;
  rec.time_ns = file->mtime_ns;
  auto seq = commit(rec);
  if (!seq) return seq.error();
  file->size_dirty = false;
  *seq_out = seq.value();
  if (!wait) file->unsynced_seq = seq.value();
  lock.unlock();
  return wait ? durable(seq.value()) : std::error_code{};
}

// ---------------------------------------------------------------------------------------------
// Data path

// Zeroes a byte range of a file (caller holds io_mu exclusively). Chunk by chunk: the zero
// chunk is zero already; a shared chunk is made private first, since WRITE SAME through the
// master bypasses the LXT permissions and would zero it for every owner.
std::error_code Filesystem::zero_bytes(FileVlun* file, uint64_t offset, uint64_t length) {
  const uint32_t bs = geometry_.block_size;
  const uint64_t chunk_bytes = geometry_.chunk_bytes();
  std::byte* block = bounce_buffer(bs);
  if (!block) return errno_error(ENOMEM);
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t c = pos / chunk_bytes;
    const uint64_t piece_end = std::min(end, (c + 1) * chunk_bytes);
    uint64_t entry;
    {
      std::shared_lock lock(ns_mu_);
      const meta::Inode* inode = meta_->ns().find(file->ino);
      if (!inode || c >= inode->lxt.size()) return errno_error(EIO);
      entry = inode->lxt[c];
    }
    if (maps_zero(entry)) {
      pos = piece_end;
      continue;
    }
    if (!(entry & sisl::LXT_PERM_WRITE)) {
      if (auto ec = make_writable(file, c)) return ec;
    }
    const uint64_t first_full = (pos + bs - 1) / bs * bs;
    const uint64_t last_full = piece_end / bs * bs;
    auto partial = [&](uint64_t block_start, uint64_t from, uint64_t to) -> std::error_code {
      std::lock_guard rmw(file->rmw_mu);
      if (auto ec = file->vlun->read(block_start / bs, 1, block)) return ec;
      std::memset(block + (from - block_start), 0, to - from);
      auto written = file->vlun->write(block_start / bs, 1, block);
      if (!written) return written.error();
      // The chunk was made writable above, under io_mu: only a snapshot's would fault.
      return written.value() ? errno_error(EROFS) : std::error_code{};
    };
    if (first_full > last_full) {
      if (auto ec = partial(pos / bs * bs, pos, piece_end)) return ec;  // inside one block
    } else {
      if (pos < first_full) {
        if (auto ec = partial(first_full - bs, pos, first_full)) return ec;
      }
      if (last_full > first_full) {
        if (auto ec = file->vlun->zero(first_full / bs, (last_full - first_full) / bs)) return ec;
      }
      if (piece_end > last_full) {
        if (auto ec = partial(last_full, last_full, piece_end)) return ec;
      }
    }
    pos = piece_end;
  }
  return {};
}

Result<FileVlun*> Filesystem::open_file(uint64_t ino, bool for_write) {
  std::unique_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  if (file_type(inode->mode) != S_IFREG) return errno_error(EISDIR);
  if (for_write && (inode->flags & meta::INODE_FLAG_READONLY)) return errno_error(EROFS);
  auto it = vluns_.find(ino);
  if (it == vluns_.end()) return errno_error(EIO);
  it->second->opens++;
  return it->second.get();
}

void Filesystem::release_file(FileVlun* file) {
  uint64_t seq = 0;
  if (file->size_dirty && !options_.read_only) {
    std::unique_lock io(file->io_mu);
    (void)persist_size(file, &seq, false);
  }
  std::unique_lock lock(ns_mu_);
  file->opens--;
  std::vector<uint64_t> seqs;
  if (file->opens == 0) maybe_free_locked(file->ino, &seqs);  // frees `file` if it was an orphan
  lock.unlock();
  if (!seqs.empty()) (void)durable(seqs.back());
}

Result<size_t> Filesystem::read(FileVlun* file, uint64_t offset, std::span<std::byte> out) {
  std::shared_lock io_lock(file->io_mu);
  const uint64_t size = file->size;
  if (offset >= size || out.empty()) return size_t{0};
  const uint64_t n = std::min<uint64_t>(out.size(), size - offset);
  const uint32_t bs = geometry_.block_size;
  const uint64_t first = offset / bs;
  const uint64_t last = (offset + n + bs - 1) / bs;
  const bool direct = offset % bs == 0 && n % bs == 0 && reinterpret_cast<uintptr_t>(out.data()) % 16 == 0;
  if (direct) {
    if (auto ec = file->vlun->read(first, last - first, out.data())) return ec;
    return static_cast<size_t>(n);
  }
  std::byte* buf = bounce_buffer((last - first) * bs);
  if (!buf) return errno_error(ENOMEM);
  if (auto ec = file->vlun->read(first, last - first, buf)) return ec;
  std::memcpy(out.data(), buf + (offset - first * bs), n);
  return static_cast<size_t>(n);
}

Result<size_t> Filesystem::write(FileVlun* file, uint64_t offset, std::span<const std::byte> data) {
  if (auto ec = writable()) return ec;
  if (data.empty()) return size_t{0};
  const uint64_t len = data.size();
  if (offset > (uint64_t{1} << 62) || len > (uint64_t{1} << 62) - offset) return errno_error(EFBIG);
  const uint64_t end = offset + len;
  const uint32_t bs = geometry_.block_size;

  // A write past the end changes the size: it runs alone on the file.
  std::shared_lock shared(file->io_mu, std::defer_lock);
  std::unique_lock exclusive(file->io_mu, std::defer_lock);
  if (end > file->size.load()) {
    exclusive.lock();
  } else {
    shared.lock();
    if (end > file->size.load()) {
      shared.unlock();
      exclusive.lock();
    }
  }
  if (exclusive.owns_lock() && end > file->size) {
    const uint64_t old_size = file->size;
    if (end > file->chunks * geometry_.chunk_bytes()) {
      auto r = resize_locked(file, end, false);  // zeroes [old_size, old chunk end)
      if (!r) return r.error();
      if (auto ec = durable(r.value())) return ec;
    } else {
      if (offset > old_size) {
        if (auto ec = zero_bytes(file, old_size, offset - old_size)) return ec;
      }
      file->size = end;
      file->size_dirty = true;
    }
  }

  const uint64_t first = offset / bs;
  const uint64_t last = (end + bs - 1) / bs;
  const bool aligned = offset % bs == 0 && len % bs == 0;
  if (aligned && reinterpret_cast<uintptr_t>(data.data()) % 16 == 0) {
    // Zero copy: the AFU reads straight from the request buffer.
    if (auto ec = write_blocks(file, first, last - first, const_cast<std::byte*>(data.data()), shared, exclusive)) {
      return ec;
    }
  } else {
    std::byte* buf = bounce_buffer((last - first) * bs);
    if (!buf) return errno_error(ENOMEM);
    std::unique_lock<std::mutex> rmw;
    if (!aligned) {
      // Partial blocks at the edges: read, patch, write back, with no other edge update between.
      rmw = std::unique_lock(file->rmw_mu);
      if (offset % bs != 0) {
        if (auto ec = file->vlun->read(first, 1, buf)) return ec;
      }
      if (end % bs != 0 && (last - 1 != first || offset % bs == 0)) {
        if (auto ec = file->vlun->read(last - 1, 1, buf + (last - 1 - first) * bs)) return ec;
      }
    }
    std::memcpy(buf + (offset - first * bs), data.data(), len);
    if (auto ec = write_blocks(file, first, last - first, buf, shared, exclusive)) return ec;
  }
  file->mtime_ns = now_ns();
  file->size_dirty = true;
  return static_cast<size_t>(len);
}

std::error_code Filesystem::fsync(FileVlun* file, bool /*datasync*/) {
  if (options_.read_only) return {};
  uint64_t seq = 0;
  if (file->size_dirty) {
    std::unique_lock io(file->io_mu);
    // The journal flush is a flush of the whole device: it makes the data durable too.
    if (auto ec = persist_size(file, &seq)) return ec;
    if (seq) return {};
  }
  // A size journaled at an earlier close may still sit in the journal's buffer: waiting for it
  // writes and flushes the journal, and the flush of the device makes the data durable too. If
  // another flush already took it down, that flush came after every write before the close, and a
  // write since then set size_dirty (every write does, for mtime) and was handled above.
  if (uint64_t pending = file->unsynced_seq.exchange(0)) return durable(pending);
  if (auto ec = lun_->synchronize_cache()) {
    log_error("SYNCHRONIZE CACHE failed: %s", ec.message().c_str());
    return errno_error(EIO);
  }
  return {};
}

std::error_code Filesystem::fallocate(FileVlun* file, int mode, uint64_t offset, uint64_t length) {
  if (auto ec = writable()) return ec;
  if (length == 0) return errno_error(EINVAL);
  if (offset > (uint64_t{1} << 62) || length > (uint64_t{1} << 62) - offset) return errno_error(EFBIG);
  const uint64_t end = offset + length;
  std::unique_lock io(file->io_mu);
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    const bool keep = mode & FALLOC_FL_KEEP_SIZE;
    if (!keep && end <= file->size) return {};
    if (keep && end <= file->chunks * geometry_.chunk_bytes()) return {};
    auto r = resize_locked(file, keep ? end : std::max<uint64_t>(end, file->size), keep);
    if (!r) return r.error();
    return durable(r.value());
  }
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) || mode == FALLOC_FL_ZERO_RANGE ||
      mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
    // Thick vLUNs keep their chunks: the range is zeroed in place (WRITE SAME + UNMAP).
    uint64_t limit = (mode & FALLOC_FL_KEEP_SIZE) ? file->size.load() : end;
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > file->size) {
      if (end > file->chunks * geometry_.chunk_bytes()) {
        auto r = resize_locked(file, end, false);
        if (!r) return r.error();
        if (auto ec = durable(r.value())) return ec;
      } else {
        if (auto ec = zero_bytes(file, file->size, end - file->size)) return ec;
        file->size = end;
        file->size_dirty = true;
      }
    }
    uint64_t zend = std::min(end, limit);
    if (zend > offset && (mode & FALLOC_FL_PUNCH_HOLE) && file->thin) {
      // Thin: whole chunks of the hole go back to the pool; the edges are zeroed in place.
      const uint64_t cb = geometry_.chunk_bytes();
      uint64_t first = (offset + cb - 1) / cb;
      uint64_t last = std::min(zend / cb, file->chunks.load());
      if (zend == file->size && zend % cb != 0) last = std::min((zend + cb - 1) / cb, file->chunks.load());
      // The edges: zeroed in place, and a chunk whose punches now cover it goes back too.
      auto edge = [&](uint64_t from, uint64_t to) -> std::error_code {
        if (to <= from) return {};
        if (auto ec = zero_bytes(file, from, to - from)) return ec;
        uint64_t c = from / cb;
        if (c < file->chunks && note_trim(file, c, from - c * cb, to - c * cb)) return punch_chunks(file, c, 1);
        return {};
      };
      if (last > first) {
        if (auto ec = edge(offset, first * cb)) return ec;
        if (auto ec = punch_chunks(file, first, last - first)) return ec;
        if (auto ec = edge(last * cb, zend)) return ec;
      } else {
        // Within one or two chunks: each piece is an edge.
        for (uint64_t pos = offset; pos < zend;) {
          uint64_t piece_end = std::min(zend, (pos / cb + 1) * cb);
          if (auto ec = edge(pos, piece_end)) return ec;
          pos = piece_end;
        }
      }
      zend = offset;  // done
    }
    if (zend > offset) {
      if (auto ec = zero_bytes(file, offset, zend - offset)) return ec;
    }
    file->mtime_ns = now_ns();
    file->size_dirty = true;
    return {};
  }
  return errno_error(EOPNOTSUPP);
}

Result<uint64_t> Filesystem::lseek(FileVlun* file, uint64_t offset, int whence) {
  std::shared_lock io(file->io_mu);
  const uint64_t size = file->size;
  if (offset >= size) return errno_error(ENXIO);
  // Chunks mapped to the zero chunk (unwritten parts of a thin vLUN) are holes; so is the end.
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return errno_error(EINVAL);
  const uint64_t cb = geometry_.chunk_bytes();
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(file->ino);
  if (!inode) return errno_error(ENOENT);
  for (uint64_t c = offset / cb; c * cb < size; ++c) {
    bool hole = c >= inode->lxt.size() || maps_zero(inode->lxt[c]);
    if (hole == (whence == SEEK_HOLE)) return std::max(offset, c * cb);
  }
  if (whence == SEEK_HOLE) return size;
  return errno_error(ENXIO);
}

// ---------------------------------------------------------------------------------------------
// Reports

struct statvfs Filesystem::statfs() {
  PoolStats p = pool_stats();
  struct statvfs s {};
  s.f_bsize = kPreferredIo;
  s.f_frsize = static_cast<unsigned long>(p.chunk_bytes);
  s.f_blocks = p.total_chunks;
  s.f_bfree = p.free_chunks;
  s.f_bavail = p.free_chunks;
  s.f_files = std::max<uint64_t>(p.inodes, 1u << 20);
  s.f_ffree = s.f_files - p.inodes;
  s.f_favail = s.f_ffree;
  s.f_namemax = meta::MAX_NAME;
  if (options_.read_only) s.f_flag |= ST_RDONLY;
  return s;
}

PoolStats Filesystem::pool_stats() {
  PoolStats p;
  p.chunk_bytes = geometry_.chunk_bytes();
  p.total_chunks = lun_->total_chunks();  // less the zero chunk, which nobody can be given
  p.free_chunks = lun_->free_chunks();
  std::shared_lock lock(ns_mu_);
  p.files = vluns_.size();
  p.inodes = meta_->ns().inodes.size();
  return p;
}

std::vector<VlunReport> Filesystem::report() {
  std::shared_lock lock(ns_mu_);
  const meta::Namespace& ns = meta_->ns();
  std::map<uint64_t, std::string> paths;
  std::function<void(uint64_t, const std::string&)> walk = [&](uint64_t dir_ino, const std::string& prefix) {
    const meta::Inode* dir = ns.find(dir_ino);
    if (!dir) return;
    for (const auto& [name, child] : dir->entries) {
      std::string path = prefix + "/" + name;
      const meta::Inode* c = ns.find(child);
      if (!c) continue;
      if (file_type(c->mode) == S_IFDIR) {
        walk(child, path);
      } else if (file_type(c->mode) == S_IFREG) {
        paths.try_emplace(child, path);
      }
    }
  };
  walk(meta::ROOT_INO, "");
  std::vector<VlunReport> out;
  for (const auto& [ino, file] : vluns_) {
    VlunReport r;
    r.ino = ino;
    auto p = paths.find(ino);
    r.path = p != paths.end() ? p->second : "(unlinked, open)";
    r.size = file->size;
    client::Mapping m = file->vlun->mapping();
    r.context_id = m.context_id;
    r.rsrc_handle = m.rsrc_handle;
    r.last_lba = m.last_lba;
    r.chunks = std::move(m.chunks);
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const VlunReport& a, const VlunReport& b) { return a.path < b.path; });
  return out;
}

}  // namespace vlunfs::fs
