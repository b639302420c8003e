// The FUSE low-level binding: one thin function per operation, each turning a request into calls
// on the Filesystem and exactly one reply. This is the one place where errors become FUSE replies,
// and where FUSE's types end: every request enters through guarded<>, so no exception reaches
// libfuse.
#include "fs/fuse_ops.h"

#include "fs/control_server.h"
#include "fs/filesystem.h"
#include "fs/request_guard.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace vlunfs::fs {

namespace {

constexpr double kTimeout = 1.0;  // attribute/entry cache: only this daemon changes the namespace

FuseTuning g_tuning;  // written by main() before the session exists, read-only afterwards
fuse_session* g_session = nullptr;  // for notifications; set by main() before the loop starts
bool g_single_thread = false;

bool for_write(const fuse_file_info* fi) { return (fi->flags & O_ACCMODE) != O_RDONLY; }

Filesystem& fs_of(fuse_req_t req) { return *static_cast<Filesystem*>(fuse_req_userdata(req)); }
FileVlun* file_of(fuse_file_info* fi) { return fi ? reinterpret_cast<FileVlun*>(fi->fh) : nullptr; }

Credentials credentials(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return {c->uid, c->gid};
}

void reply_error(fuse_req_t req, const std::error_code& ec) { fuse_reply_err(req, ec.value() ? ec.value() : EIO); }

fuse_entry_param entry_of(const Attr& a) {
  fuse_entry_param e{};
  e.ino = a.st.st_ino;
  e.attr = a.st;
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  return e;
}

void reply_entry(fuse_req_t req, const Result<Attr>& r) {
  if (!r) return reply_error(req, r.error());
  fuse_entry_param e = entry_of(r.value());
  fuse_reply_entry(req, &e);
}

void op_init(void* /*userdata*/, fuse_conn_info* conn) { apply_init(g_tuning, conn); }

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) { reply_entry(req, fs_of(req).lookup(parent, name)); }

void op_forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto r = fs_of(req).getattr(ino);
  if (!r) return reply_error(req, r.error());
  fuse_reply_attr(req, &r.value().st, kTimeout);
}

AttrChanges changes_of(int to_set) {
  AttrChanges c;
  c.size = to_set & FUSE_SET_ATTR_SIZE;
  c.mode = to_set & FUSE_SET_ATTR_MODE;
  c.uid = to_set & FUSE_SET_ATTR_UID;
  c.gid = to_set & FUSE_SET_ATTR_GID;
  c.atime = to_set & FUSE_SET_ATTR_ATIME;
  c.atime_now = to_set & FUSE_SET_ATTR_ATIME_NOW;
  c.mtime = to_set & FUSE_SET_ATTR_MTIME;
  c.mtime_now = to_set & FUSE_SET_ATTR_MTIME_NOW;
  c.ctime = to_set & FUSE_SET_ATTR_CTIME;
  return c;
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  auto r = fs_of(req).setattr(ino, *attr, changes_of(to_set), file_of(fi));
  if (!r) return reply_error(req, r.error());
  fuse_reply_attr(req, &r.value().st, kTimeout);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = fs_of(req).readlink(ino);
  if (!r) return reply_error(req, r.error());
  fuse_reply_readlink(req, r.value().c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  reply_entry(req, fs_of(req).mknod(parent, name, mode, rdev, credentials(req)));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply_entry(req, fs_of(req).mkdir(parent, name, mode, credentials(req)));
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, fs_of(req).unlink(parent, name).value());
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, fs_of(req).rmdir(parent, name).value());
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  reply_entry(req, fs_of(req).symlink(parent, name, target, credentials(req)));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
               unsigned flags) {
  fuse_reply_err(req, fs_of(req).rename(parent, name, new_parent, new_name, flags).value());
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  reply_entry(req, fs_of(req).link(ino, new_parent, new_name));
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = fs_of(req).open_file(ino, for_write(fi));
  if (!r) return reply_error(req, r.error());
  fi->fh = reinterpret_cast<uint64_t>(r.value());
  apply_open(g_tuning, fi);
  if (fuse_reply_open(req, fi) != 0) fs_of(req).release_file(r.value(), for_write(fi));
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Filesystem& fs = fs_of(req);
  auto a = fs.create(parent, name, mode, credentials(req));
  if (!a) return reply_error(req, a.error());
  auto f = fs.open_file(a.value().st.st_ino, for_write(fi));
  if (!f) return reply_error(req, f.error());
  fi->fh = reinterpret_cast<uint64_t>(f.value());
  apply_open(g_tuning, fi);
  fuse_entry_param e = entry_of(a.value());
  if (fuse_reply_create(req, &e, fi) != 0) fs.release_file(f.value(), for_write(fi));
}

// Per-thread, page-aligned: the AFU reads into it directly and fuse_reply_buf copies it out.
std::byte* read_buffer(size_t size) {
  struct Buffer {
    std::byte* p = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  if (buf.size < size) {
    std::free(buf.p);
    buf.size = (size + 4095) & ~size_t{4095};
    buf.p = static_cast<std::byte*>(std::aligned_alloc(4096, buf.size));
    if (!buf.p) buf.size = 0;
  }
  return buf.p;
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  std::byte* buf = read_buffer(size);
  if (!buf) return (void)fuse_reply_err(req, ENOMEM);
  auto n = fs_of(req).read(file_of(fi), static_cast<uint64_t>(off), {buf, size});
  if (!n) return reply_error(req, n.error());
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf), n.value());
}

void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return (void)fuse_reply_err(req, EINVAL);
  auto n = fs_of(req).write(file_of(fi), static_cast<uint64_t>(off),
                            {reinterpret_cast<const std::byte*>(data), size});
  if (!n) return reply_error(req, n.error());
  fuse_reply_write(req, n.value());
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fs_of(req).release_file(file_of(fi), for_write(fi));
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  fuse_reply_err(req, fs_of(req).fsync(file_of(fi), datasync != 0).value());
}

struct DirHandle {
  std::vector<DirEntry> entries;
};

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = fs_of(req).readdir(ino);
  if (!r) return reply_error(req, r.error());
  // A snapshot at opendir: offsets stay stable while the directory changes underneath.
  auto* handle = new DirHandle{std::move(r).value()};
  fi->fh = reinterpret_cast<uint64_t>(handle);
  if (fuse_reply_open(req, fi) != 0) delete handle;
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* handle = reinterpret_cast<DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < handle->entries.size(); ++i) {
    const DirEntry& d = handle->entries[i];
    struct stat st {};
    st.st_ino = d.ino;
    st.st_mode = d.mode;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, d.name.c_str(), &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

// Every namespace change is durable before it is answered; nothing is left to flush.
void op_fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s = fs_of(req).statfs();
  fuse_reply_statfs(req, &s);
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t length, fuse_file_info* fi) {
  if (off < 0 || length <= 0) return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_err(req, fs_of(req).fallocate(file_of(fi), mode, static_cast<uint64_t>(off),
                                           static_cast<uint64_t>(length)).value());
}

// SEEK_DATA/SEEK_HOLE: the kernel forwards them without writing back its cached pages first, so
// while a handle is open for writing (writeback cache, shared writable mmap) the chunk map and
// the size may be behind what reads return. The inode's pages from `off` on are then invalidated
// first: the kernel writes the dirty ones back (launder) and waits for those WRITEs, which other
// serving threads answer, before the notification returns; the map is then up to date and the
// size is the kernel's. One thread cannot serve both, and a failed notification proves nothing:
// ENOSYS then hands SEEK_DATA/SEEK_HOLE to the kernel's generic code for the rest of the mount
// (everything data, a hole at the kernel's EOF), which is never less than what reads return.
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
  if (off < 0) return (void)fuse_reply_err(req, ENXIO);
  Filesystem& fs = fs_of(req);
  if ((whence == SEEK_DATA || whence == SEEK_HOLE) && fs.may_hold_unseen_writes(file_of(fi))) {
    if (g_single_thread || g_session == nullptr) return (void)fuse_reply_err(req, ENOSYS);
    const off_t first_page = off & ~off_t{4095};
    const int rc = fuse_lowlevel_notify_inval_inode(g_session, ino, first_page, 0);
    if (rc != 0 && rc != -ENOENT) return (void)fuse_reply_err(req, ENOSYS);
  }
  auto r = fs.lseek(file_of(fi), static_cast<uint64_t>(off), whence);
  if (!r) return reply_error(req, r.error());
  fuse_reply_lseek(req, static_cast<off_t>(r.value()));
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t, off_t off_out,
                        fuse_file_info* fi_out, size_t len, int flags) {
  if (flags != 0) return (void)fuse_reply_err(req, EINVAL);
  if (off_in < 0 || off_out < 0) return (void)fuse_reply_err(req, EINVAL);
  auto r = fs_of(req).copy_range(file_of(fi_in), static_cast<uint64_t>(off_in), file_of(fi_out),
                                 static_cast<uint64_t>(off_out), len);
  if (!r) return reply_error(req, r.error());
  fuse_reply_write(req, r.value());
}

// vlunctl's commands (control_ioctl.h), on any file or directory of the mount. Restricted ioctls
// only: the kernel has copied in_bufsz bytes in and takes out_bufsz back.
// The structs have one layout for 32- and 64-bit callers, so FUSE_IOCTL_COMPAT changes nothing.
void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info*, unsigned,
              const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
  const fuse_ctx* c = fuse_req_ctx(req);
  std::vector<char> out;
  auto ec = answer_control_ioctl(fs_of(req), caller_of(c->uid, c->gid, c->pid), ino, cmd, in_buf, in_bufsz,
                                 out_bufsz, &out);
  if (ec) return reply_error(req, ec);
  fuse_reply_ioctl(req, 0, out.data(), out.size());
}

// The operation's name, for the log line of an exception that escaped it.
template <size_t N>
struct OpName {
  char text[N];
  constexpr OpName(const char (&name)[N]) { std::copy_n(name, N, text); }
};

// Where every request enters: an exception from the handler becomes its reply (ENOMEM for
// std::bad_alloc, EIO otherwise, logged). Handlers reply last, so one that threw has not replied.
template <OpName Name, auto Op, typename... Args>
void guarded(fuse_req_t req, Args... args) {
  if (int e = run_guarded(Name.text, [&] { Op(req, args...); })) fuse_reply_err(req, e);
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = guarded<"lookup", op_lookup>;
  ops.forget = guarded<"forget", op_forget>;
  ops.getattr = guarded<"getattr", op_getattr>;
  ops.setattr = guarded<"setattr", op_setattr>;
  ops.readlink = guarded<"readlink", op_readlink>;
  ops.mknod = guarded<"mknod", op_mknod>;
  ops.mkdir = guarded<"mkdir", op_mkdir>;
  ops.unlink = guarded<"unlink", op_unlink>;
  ops.rmdir = guarded<"rmdir", op_rmdir>;
  ops.symlink = guarded<"symlink", op_symlink>;
  ops.rename = guarded<"rename", op_rename>;
  ops.link = guarded<"link", op_link>;
  ops.open = guarded<"open", op_open>;
  ops.read = guarded<"read", op_read>;
  ops.write = guarded<"write", op_write>;
  ops.flush = guarded<"flush", op_flush>;
  ops.release = guarded<"release", op_release>;
  ops.fsync = guarded<"fsync", op_fsync>;
  ops.opendir = guarded<"opendir", op_opendir>;
  ops.readdir = guarded<"readdir", op_readdir>;
  ops.releasedir = guarded<"releasedir", op_releasedir>;
  ops.fsyncdir = guarded<"fsyncdir", op_fsyncdir>;
  ops.statfs = guarded<"statfs", op_statfs>;
  ops.create = guarded<"create", op_create>;
  ops.fallocate = guarded<"fallocate", op_fallocate>;
  ops.lseek = guarded<"lseek", op_lseek>;
  ops.copy_file_range = guarded<"copy_file_range", op_copy_file_range>;
  ops.ioctl = guarded<"ioctl", op_ioctl>;
  // No getxattr/setxattr: without them the kernel stops asking for security.capability on
  // every write (ENOSYS is remembered).
  return ops;
}();

}  // namespace

void set_fuse_tuning(const FuseTuning& tuning) { g_tuning = tuning; }

void set_fuse_session(fuse_session* se, bool single_thread) {
  g_session = se;
  g_single_thread = single_thread;
}

const fuse_lowlevel_ops& fuse_operations() { return kOps; }

}  // namespace vlunfs::fs
