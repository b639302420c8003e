// The FUSE binding of the kernel-vLUN scratch mount (scratch_fs.h): one function per operation,
// each a call on ScratchFs and one reply; errors become replies here and nowhere else.
#include "fs/log.h"
#include "fs/scratch/scratch_fs.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace vlunfs::fs::scratch {

namespace {

// Attributes may be cached for a second: only this daemon changes them.
constexpr double kAttrTimeout = 1.0;

ScratchFs& fs_of(fuse_req_t req) { return *static_cast<ScratchFs*>(fuse_req_userdata(req)); }

int errno_of(const std::error_code& ec) { return ec.value() != 0 ? ec.value() : EIO; }

void reply_entry(fuse_req_t req, const ScratchFs::Entry& e) {
  fuse_entry_param p{};
  p.ino = e.ino;
  p.attr = e.attr;
  p.attr_timeout = p.entry_timeout = kAttrTimeout;
  fuse_reply_entry(req, &p);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto e = fs_of(req).lookup(parent, name);
  if (!e) {
    fuse_reply_err(req, errno_of(e.error()));
    return;
  }
  reply_entry(req, e.value());
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fs_of(req).forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) fs_of(req).forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto st = fs_of(req).getattr(ino);
  if (!st) {
    fuse_reply_err(req, errno_of(st.error()));
    return;
  }
  fuse_reply_attr(req, &st.value(), kAttrTimeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  auto st = fs_of(req).setattr(ino, *attr, to_set);
  if (!st) {
    fuse_reply_err(req, errno_of(st.error()));
    return;
  }
  fuse_reply_attr(req, &st.value(), kAttrTimeout);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  if (!S_ISREG(mode)) {
    log_info("mknod %s: refused (EPERM): a -o kernel_vluns mount holds regular files only", name);
    fuse_reply_err(req, EPERM);
    return;
  }
  const fuse_ctx* ctx = fuse_req_ctx(req);
  auto e = fs_of(req).create(parent, name, mode, ctx->uid, ctx->gid);
  if (!e) {
    fuse_reply_err(req, errno_of(e.error()));
    return;
  }
  reply_entry(req, e.value());
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  ScratchFs& fs = fs_of(req);
  auto e = fs.create(parent, name, S_IFREG | (mode & 07777), ctx->uid, ctx->gid);
  if (!e) {
    fuse_reply_err(req, errno_of(e.error()));
    return;
  }
  if (auto ec = fs.open(e.value().ino)) {
    fuse_reply_err(req, errno_of(ec));
    return;
  }
  fuse_entry_param p{};
  p.ino = e.value().ino;
  p.attr = e.value().attr;
  p.attr_timeout = p.entry_timeout = kAttrTimeout;
  fuse_reply_create(req, &p, fi);
}

void op_mkdir(fuse_req_t req, fuse_ino_t, const char* name, mode_t) {
  log_info("mkdir %s: refused (EPERM): a -o kernel_vluns mount is one flat directory of files", name);
  fuse_reply_err(req, EPERM);
}

void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char* name) {
  log_info("symlink %s: refused (EPERM): a -o kernel_vluns mount holds regular files only", name);
  fuse_reply_err(req, EPERM);
}

void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char* name) {
  log_info("link %s: refused (EPERM): a file of a -o kernel_vluns mount has one name", name);
  fuse_reply_err(req, EPERM);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto ec = fs_of(req).unlink(parent, name);
  fuse_reply_err(req, ec ? errno_of(ec) : 0);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  // There are no directories below the root: a name is a file, or nothing.
  fuse_reply_err(req, fs_of(req).list().count(name) != 0 || parent != FUSE_ROOT_ID ? ENOTDIR : ENOENT);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
               unsigned flags) {
  auto ec = fs_of(req).rename(parent, name, new_parent, new_name, flags);
  fuse_reply_err(req, ec ? errno_of(ec) : 0);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino == FUSE_ROOT_ID) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (auto ec = fs_of(req).open(ino)) {
    fuse_reply_err(req, errno_of(ec));
    return;
  }
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  std::vector<std::byte> buf(size);
  auto n = fs_of(req).read(ino, static_cast<uint64_t>(offset), buf);
  if (!n) {
    fuse_reply_err(req, errno_of(n.error()));
    return;
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), n.value());
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t offset, fuse_file_info*) {
  auto ec = fs_of(req).write(ino, static_cast<uint64_t>(offset), {reinterpret_cast<const std::byte*>(data), size});
  if (ec) {
    fuse_reply_err(req, errno_of(ec));
    return;
  }
  fuse_reply_write(req, size);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);  // writes reach the vLUN before they are answered: nothing is held back
}

void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  auto ec = fs_of(req).files().flush();  // SYNCHRONIZE CACHE of the LUN
  fuse_reply_err(req, ec ? errno_of(ec) : 0);
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto ec = fs_of(req).release(ino);
  if (ec) log_error("release of inode %llu: RELEASE of its vLUN failed: %s", static_cast<unsigned long long>(ino),
                    ec.message().c_str());
  fuse_reply_err(req, 0);  // close(2) does not see release's answer
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  // The entries as they are now, so that offsets stay valid while the directory is read.
  auto* snapshot = new std::vector<std::pair<std::string, fuse_ino_t>>{{".", FUSE_ROOT_ID}, {"..", FUSE_ROOT_ID}};
  for (const auto& [name, ino_of] : fs_of(req).list()) snapshot->emplace_back(name, ino_of);
  fi->fh = reinterpret_cast<uint64_t>(snapshot);
  if (fuse_reply_open(req, fi) != 0) delete snapshot;
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  const auto& entries = *reinterpret_cast<std::vector<std::pair<std::string, fuse_ino_t>>*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < entries.size(); ++i) {
    struct stat st {};
    st.st_ino = entries[i].second;
    st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
    const size_t need = fuse_add_direntry(req, buf.data() + used, size - used, entries[i].first.c_str(), &st,
                                          static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<std::vector<std::pair<std::string, fuse_ino_t>>*>(fi->fh);
  fuse_reply_err(req, 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  const struct statvfs s = fs_of(req).statfs();
  fuse_reply_statfs(req, &s);
}

void op_no_xattrs(fuse_req_t req) { fuse_reply_err(req, ENOTSUP); }
void op_setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { op_no_xattrs(req); }
void op_getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) { op_no_xattrs(req); }
void op_listxattr(fuse_req_t req, fuse_ino_t, size_t) { op_no_xattrs(req); }
void op_removexattr(fuse_req_t req, fuse_ino_t, const char*) { op_no_xattrs(req); }

void op_fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  fuse_reply_err(req, ENOTSUP);  // truncate provisions a vLUN (VLUN_RESIZE)
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.mknod = op_mknod;
  ops.create = op_create;
  ops.mkdir = op_mkdir;
  ops.symlink = op_symlink;
  ops.link = op_link;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.rename = op_rename;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.fsync = op_fsync;
  ops.release = op_release;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.fallocate = op_fallocate;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& ScratchFs::operations() {
  static const fuse_lowlevel_ops ops = make_operations();
  return ops;
}

}  // namespace vlunfs::fs::scratch
