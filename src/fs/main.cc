// vlunfs: the FUSE daemon. vlunfs [-f] [-d] [-s] [-o OPTIONS] DEVICE_OR_IMAGE MOUNTPOINT
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "fs/fuse_ops.h"
#include "fs/log.h"
#include "fs/mountpoint_check.h"
#include "fs/umount_record.h"
#include "tools/size_arg.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace {

struct Config {
  char* device = nullptr;
  int read_only = 0;
  int thin = 0;
  int show_help = 0;
  int show_version = 0;
  // Data path tuning (bench/RESULTS.md has the numbers behind each default).
  int direct_io = 0;
  int writeback_cache = 0;
  int no_clone_fd = 0;
  unsigned max_threads = 64;     // a thread per request in flight: io_uring QD 32 and more
  unsigned max_background = 64;
  char* write_behind = nullptr;  // a size (tools/size_arg.h); a bare number counts MiB
};

enum { KEY_RO = 1, KEY_THIN = 2 };

const fuse_opt kOptions[] = {
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("thin", KEY_THIN),
    {"direct_io", offsetof(Config, direct_io), 1},
    {"writeback_cache", offsetof(Config, writeback_cache), 1},
    {"noclone_fd", offsetof(Config, no_clone_fd), 1},
    {"max_threads=%u", offsetof(Config, max_threads), 0},
    {"max_background=%u", offsetof(Config, max_background), 0},
    {"write_behind=%s", offsetof(Config, write_behind), 0},
    {"-h", offsetof(Config, show_help), 1},
    {"--help", offsetof(Config, show_help), 1},
    {"-V", offsetof(Config, show_version), 1},
    {"--version", offsetof(Config, show_version), 1},
    FUSE_OPT_END,
};

int keep_option(void* data, const char* arg, int key, fuse_args*) {
  auto* conf = static_cast<Config*>(data);
  if (key == FUSE_OPT_KEY_NONOPT && conf->device == nullptr) {
    conf->device = strdup(arg);
    return 0;  // ours: the device
  }
  if (key == KEY_RO) conf->read_only = 1;  // and kept: the kernel mount is read-only too
  if (key == KEY_THIN) {
    conf->thin = 1;
    return 0;  // ours alone
  }
  return 1;
}

void usage(const char* prog) {
  std::printf(
      "usage: %s [options] DEVICE_OR_IMAGE MOUNTPOINT\n"
      "\n"
      "Mounts a vlunfs flash device or simulated flash image (made by mkfs.vlunfs). Every regular\n"
      "file is a virtual LUN: truncate provisions it, rm releases its chunks.\n"
      "\n"
      "options:\n"
      "  -f                 stay in the foreground\n"
      "  -d                 debug: foreground, print every FUSE request\n"
      "  -s                 serve requests on one thread\n"
      "  -o ro              read-only mount\n"
      "  -o thin            new files are thin: chunks are allocated on first write, so a vLUN\n"
      "                     may be larger than the flash (ENOSPC comes at write time)\n"
      "  -o allow_other     let other users reach the mount (needs user_allow_other for non-root)\n"
      "  -o direct_io       no page cache for file data: every read and write goes to the daemon\n"
      "  -o writeback_cache the kernel caches writes and sends them later in large pieces (fast\n"
      "                     small writes; errors such as ENOSPC then come at fsync or close); the\n"
      "                     mount's dirty-page limit is raised (bdi max_ratio 100, no strict_limit)\n"
      "  -o max_threads=N   threads serving requests (default 64)\n"
      "  -o noclone_fd      all threads share one /dev/fuse descriptor (default: one each)\n"
      "  -o max_background=N  asynchronous requests (readahead, writeback) in flight (default 64)\n"
      "  -o write_behind=N  start writing each completed N MiB window of the image to the disk at\n"
      "                     once, so that a large sequential write has little left for its fsync\n"
      "                     (default 8; a size such as 512K or 16M also works; 0 leaves it to the\n"
      "                     kernel's flusher)\n"
      "  -o OPTION[,...]    other FUSE mount options (see mount.fuse3(8))\n"
      "  -h, --help         this text\n"
      "  -V, --version      version\n"
      "\n"
      "Unmount with: umount MOUNTPOINT (or fusermount3 -u MOUNTPOINT)\n",
      prog);
}

}  // namespace

int main(int argc, char* argv[]) {
  using namespace vlunfs::fs;
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  Config conf;
  fuse_cmdline_opts opts{};
  // What option parsing allocates is given back on every way out of main.
  struct ParsedArgs {
    fuse_args* args;
    Config* conf;
    fuse_cmdline_opts* opts;
    ~ParsedArgs() {
      fuse_opt_free_args(args);
      free(conf->device);
      free(conf->write_behind);
      free(opts->mountpoint);
    }
  } parsed{&args, &conf, &opts};
  if (fuse_opt_parse(&args, &conf, kOptions, keep_option) != 0) return 2;
  if (conf.show_help) {
    usage(argv[0]);
    return 0;
  }
  if (conf.show_version) {
    std::printf("vlunfs 0.1.0 (simulated CAPI flash AFU; FUSE %s)\n", fuse_pkgversion());
    return 0;
  }
  if (fuse_parse_cmdline(&args, &opts) != 0) return 2;
  if (conf.device == nullptr || opts.mountpoint == nullptr) {
    std::fprintf(stderr, "vlunfs: need a device or image and a mountpoint\n");
    usage(argv[0]);
    return 2;
  }
  std::string device = conf.device;
  auto usable = mountpoint_usable(opts.mountpoint);
  if (!usable) {
    std::fprintf(stderr, "vlunfs: %s\n", usable.error().message.c_str());
    return 1;
  }
  const std::string canonical_mountpoint = usable.value();
  const char* canonical = canonical_mountpoint.c_str();
  log_open("vlunfs", true);

  MountOptions mount_options;
  mount_options.read_only = conf.read_only != 0;
  mount_options.thin = conf.thin != 0;
  if (conf.write_behind != nullptr) {
    auto window = vlunfs::tools::parse_size(conf.write_behind, uint64_t{1} << 20);
    if (!window || window.value() > (uint64_t{64} << 30)) {
      std::fprintf(stderr, "vlunfs: -o write_behind=%s: %s\n", conf.write_behind,
                   window ? "at most 65536 MiB (64G)" : window.error().message.c_str());
      return 2;
    }
    mount_options.write_behind = window.value();
  }
  std::string why;
  auto opened = Filesystem::open(device, mount_options, &why);
  if (!opened) {
    std::fprintf(stderr, "vlunfs: cannot mount: %s\n", why.c_str());
    return 1;
  }
  std::unique_ptr<Filesystem> fs = std::move(opened).value();
  // The AFU context is attached here, before the daemon detaches; the daemon process then
  // clones it (VLUN_CLONE, spec §6) and carries on with the same resource handles. The backend
  // is the simulated AFU over the image's data region.
  if (auto ec = fs->start(vlunfs::client::simulated_afu(), &why)) {
    std::fprintf(stderr, "vlunfs: cannot mount: %s\n", why.c_str());
    return 1;
  }

  // Permission checks by the kernel; the device's absolute path in /proc/mounts, where umount's
  // helper (umount.fuse.vlunfs) and the tools find which image a mount holds.
  fuse_opt_add_arg(&args, "-odefault_permissions");
  char resolved[PATH_MAX];
  const std::string device_path = realpath(device.c_str(), resolved) ? resolved : device;
  std::string fsname = "-ofsname=" + device_path + ",subtype=vlunfs";
  fuse_opt_add_arg(&args, fsname.c_str());
  FuseTuning tuning;
  tuning.direct_io = conf.direct_io != 0;
  tuning.writeback_cache = conf.writeback_cache != 0;
  tuning.max_background = conf.max_background;
  tuning.max_threads = conf.max_threads;
  tuning.clone_fd = conf.no_clone_fd == 0;
  set_fuse_tuning(tuning);
  fuse_session* se = fuse_session_new(&args, &fuse_operations(), sizeof(fuse_lowlevel_ops), fs.get());
  if (se == nullptr) return 2;  // libfuse has said which option it does not know
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, opts.mountpoint) != 0) {
    std::fprintf(stderr, "vlunfs: cannot mount on %s\n", opts.mountpoint);
    fuse_session_destroy(se);
    return 1;
  }
  // So that `umount MNT` returns only after this daemon has released the image.
  std::string not_recorded;
  const bool recorded = record_umount_helper(device_path, canonical, &not_recorded);
  if (!recorded) {
    log_warning("umount %s will return before this daemon has released %s (%s); vlunfs, vlunctl fsck and "
                "vlunctl info wait for the release", canonical, device_path.c_str(), not_recorded.c_str());
  }
  if (!tune_bdi(canonical, tuning.writeback_cache)) {
    log_warning("cannot tune the readahead and dirty limits of %s's bdi (needs root)", canonical);
  }

  // Daemonize by hand rather than with fuse_daemonize(): the child must clone the parent's AFU
  // contexts (a context belongs to the process that attached it, pitfall 21), and the parent
  // waits to report whether that worked, so a failure is seen on the terminal, not in syslog.
  int report_fd = -1;
  if (!opts.foreground) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return 1;
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) {
      close(pipefd[1]);
      char buf[1024];
      ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
      if (n == 1 && buf[0] == 0) _exit(0);
      buf[n > 0 ? n : 0] = 0;
      std::fprintf(stderr, "vlunfs: cannot mount: %s\n", n > 0 ? buf : "the daemon died while starting");
      _exit(1);
    }
    close(pipefd[0]);
    report_fd = pipefd[1];
    setsid();
    (void)!chdir("/");
  }
  auto report = [&](const std::string& message) {
    if (report_fd < 0) return;
    if (message.empty()) {
      char ok = 0;
      (void)!write(report_fd, &ok, 1);
    } else {
      (void)!write(report_fd, message.data(), message.size());
    }
    close(report_fd);
    report_fd = -1;
  };

  // A loop device over a vLUN must not wait on memory reclaim that waits on this daemon.
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) {
    log_warning("PR_SET_IO_FLUSHER refused (%s; it needs CAP_SYS_RESOURCE): a loop device over a vLUN "
                "could deadlock under heavy memory pressure", std::strerror(errno));
  }

  if (!opts.foreground) {
    if (auto ec = fs->adopt_parent_contexts(&why)) {
      report(why);
      fuse_session_unmount(se);
      if (recorded) forget_umount_helper(canonical);
      fuse_session_destroy(se);
      return 1;
    }
  }
  if (!opts.foreground) {
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2) close(null);
    }
    log_open("vlunfs", false);
  }
  report("");
  log_info("mounted %s on %s", device.c_str(), canonical);

  const int rc = run_session(se, tuning, opts.singlethread != 0);
  fs->shutdown();
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  // Before the image is released (when fs goes, at return): umount.fuse.vlunfs waits for that.
  if (recorded) forget_umount_helper(canonical);
  log_info("unmounted %s", canonical);
  return rc == 0 ? 0 : 1;
}
