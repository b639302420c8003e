// passthrough_one: the smallest FUSE file system that serves one backing file, written for
// bench/run.sh to measure what FUSE itself costs. The mount's root holds one regular file, "file";
// its reads and writes are pread/pwrite on the backing file through a page-aligned per-thread
// buffer: the same data movement as vlunfs, whose simulated AFU preads/pwrites its image.
//
// FUSE settings are vlunfs's own code (src/fs/fuse_tuning.h: INIT parameters, open flags, the
// bdi, the session loop), so the two cannot drift apart; like vlunfs it has no getxattr.
//
//   passthrough_one [-f] [-s] [-o direct_io,writeback_cache,max_threads=N,noclone_fd,max_background=N]
//                   BACKING MOUNTPOINT          (the same -o options as vlunfs, same defaults)
//
// With -o discard it is FUSE's floor rather than a file system: writes are acknowledged without
// being stored and reads are answered with zeros without touching the backing file (which only
// gives the file its size). No daemon that keeps the data can be faster than that mount.

#include "fs/fuse_tuning.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr fuse_ino_t kFileIno = 2;
constexpr const char* kFileName = "file";
constexpr double kTimeout = 1.0;

struct Config {
  char* backing = nullptr;
  int direct_io = 0;
  int writeback_cache = 0;
  int threads = 64;
  int max_background = 64;
  int no_clone_fd = 0;
  int discard = 0;  // the floor: see the top of the file
};

Config g_conf;
vlunfs::fs::FuseTuning g_tuning;  // from g_conf, before the session starts
int g_fd = -1;

const fuse_opt kOptions[] = {
    {"direct_io", offsetof(Config, direct_io), 1},
    {"writeback_cache", offsetof(Config, writeback_cache), 1},
    {"max_threads=%d", offsetof(Config, threads), 0},
    {"noclone_fd", offsetof(Config, no_clone_fd), 1},
    {"max_background=%d", offsetof(Config, max_background), 0},
    {"discard", offsetof(Config, discard), 1},
    FUSE_OPT_END,
};

int keep_arg(void* data, const char* arg, int key, fuse_args*) {
  auto* conf = static_cast<Config*>(data);
  if (key == FUSE_OPT_KEY_NONOPT && conf->backing == nullptr) {
    conf->backing = strdup(arg);
    return 0;
  }
  return 1;
}

bool stat_of(fuse_ino_t ino, struct stat* st) {
  *st = {};
  if (ino == FUSE_ROOT_ID) {
    st->st_ino = FUSE_ROOT_ID;
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return true;
  }
  if (ino != kFileIno || fstat(g_fd, st) != 0) return false;
  st->st_ino = kFileIno;
  st->st_blksize = 1 << 20;
  return true;
}

// The bytes of the backing file at and after off (what a -o discard read may return).
size_t file_size_from(off_t off) {
  struct stat st;
  if (fstat(g_fd, &st) != 0 || st.st_size <= off) return 0;
  return static_cast<size_t>(st.st_size - off);
}

// Per thread and page-aligned, as vlunfs's read buffer.
char* thread_buffer(size_t size) {
  struct Buffer {
    char* p = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  if (buf.size < size) {
    std::free(buf.p);
    buf.size = (size + 4095) & ~size_t{4095};
    buf.p = static_cast<char*>(std::aligned_alloc(4096, buf.size));
    if (!buf.p) buf.size = 0;
    if (buf.p) std::memset(buf.p, 0, buf.size);  // what -o discard reads return
  }
  return buf.p;
}

void op_init(void*, fuse_conn_info* conn) { vlunfs::fs::apply_init(g_tuning, conn); }

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e{};
  if (parent != FUSE_ROOT_ID || std::strcmp(name, kFileName) != 0 || !stat_of(kFileIno, &e.attr)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  e.ino = kFileIno;
  e.attr_timeout = e.entry_timeout = kTimeout;
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  if (!stat_of(ino, &st)) return (void)fuse_reply_err(req, ENOENT);
  fuse_reply_attr(req, &st, kTimeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  if (ino != kFileIno) return (void)fuse_reply_err(req, EPERM);
  if ((to_set & FUSE_SET_ATTR_SIZE) && ftruncate(g_fd, attr->st_size) != 0) return (void)fuse_reply_err(req, errno);
  struct stat st;
  stat_of(ino, &st);
  fuse_reply_attr(req, &st, kTimeout);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (ino != kFileIno) return (void)fuse_reply_err(req, EISDIR);
  vlunfs::fs::apply_open(g_tuning, fi);
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  char* buf = thread_buffer(size);
  if (!buf) return (void)fuse_reply_err(req, ENOMEM);
  size_t done = g_conf.discard ? std::min<size_t>(size, file_size_from(off)) : 0;
  while (done < size) {
    ssize_t n = pread(g_fd, buf + done, size - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return (void)fuse_reply_err(req, errno);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  fuse_reply_buf(req, buf, done);
}

void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info*) {
  size_t done = g_conf.discard ? size : 0;
  while (done < size) {
    ssize_t n = pwrite(g_fd, data + done, size - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return (void)fuse_reply_err(req, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  fuse_reply_write(req, done);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }
void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, fdatasync(g_fd) == 0 ? 0 : errno);
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t length, fuse_file_info*) {
  fuse_reply_err(req, fallocate(g_fd, mode, off, length) == 0 ? 0 : errno);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  char buf[512];
  size_t used = 0;
  const char* names[] = {".", "..", kFileName};
  const fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, kFileIno};
  for (off_t i = off; i < 3; ++i) {
    struct stat st{};
    st.st_ino = inos[i];
    st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
    size_t room = std::min(size, sizeof buf) - used;
    size_t need = fuse_add_direntry(req, buf + used, room, names[i], &st, i + 1);
    if (need > room) break;
    used += need;
  }
  fuse_reply_buf(req, buf, used);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s;
  if (fstatvfs(g_fd, &s) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_statfs(req, &s);
}

}  // namespace

int main(int argc, char* argv[]) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  if (fuse_opt_parse(&args, &g_conf, kOptions, keep_arg) != 0) return 2;
  g_tuning.direct_io = g_conf.direct_io != 0;
  g_tuning.writeback_cache = g_conf.writeback_cache != 0;
  g_tuning.max_background = static_cast<unsigned>(std::max(1, g_conf.max_background));
  g_tuning.max_threads = static_cast<unsigned>(std::max(1, g_conf.threads));
  g_tuning.clone_fd = g_conf.no_clone_fd == 0;
  fuse_cmdline_opts opts{};
  if (fuse_parse_cmdline(&args, &opts) != 0) return 2;
  if (g_conf.backing == nullptr || opts.mountpoint == nullptr) {
    std::fprintf(stderr, "usage: %s [-f] [-s] [-o direct_io,writeback_cache,max_threads=N,noclone_fd,max_background=N,discard] BACKING MOUNTPOINT\n", argv[0]);
    return 2;
  }
  g_fd = open(g_conf.backing, O_RDWR | O_CLOEXEC);
  if (g_fd < 0) {
    std::fprintf(stderr, "passthrough_one: %s: %s\n", g_conf.backing, std::strerror(errno));
    return 1;
  }
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.fallocate = op_fallocate;
  ops.readdir = op_readdir;
  ops.statfs = op_statfs;

  fuse_opt_add_arg(&args, "-odefault_permissions");
  fuse_opt_add_arg(&args, "-ofsname=passthrough_one");
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (se == nullptr) return 1;
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, opts.mountpoint) != 0) return 1;
  char canonical[PATH_MAX];
  if (realpath(opts.mountpoint, canonical) == nullptr || !vlunfs::fs::tune_bdi(canonical, g_tuning.writeback_cache)) {
    std::fprintf(stderr, "passthrough_one: cannot tune the bdi of %s (needs root)\n", opts.mountpoint);
  }
  fuse_daemonize(opts.foreground);
  const int rc = vlunfs::fs::run_session(se, g_tuning, opts.singlethread != 0);
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  close(g_fd);
  return rc == 0 ? 0 : 1;
}
