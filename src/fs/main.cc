// vlunfs: the FUSE daemon. vlunfs [-f] [-d] [-s] [-o OPTIONS] DEVICE_OR_IMAGE MOUNTPOINT
#include "afu/capi/device.h"
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "fs/fuse_ops.h"
#include "fs/log.h"
#include "fs/metrics_http.h"
#include "fs/metrics_prometheus.h"
#include "fs/mountpoint_check.h"
#include "fs/scratch/kernel_vluns_mount.h"
#include "fs/umount_record.h"
#include "store/rbd/named_store.h"
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
  int image_direct = 0;
  int writeback_cache = 0;
  int no_clone_fd = 0;
  unsigned max_threads = 64;     // a thread per request in flight: io_uring QD 32 and more
  unsigned max_background = 64;
  char* write_behind = nullptr;  // a size (tools/size_arg.h); a bare number counts MiB
  char* backend = nullptr;       // sim, capi or auto (afu/capi/device.h)
  // An rbd:POOL/IMAGE device (docs/rbd.md).
  char* ceph_conf = nullptr;
  char* ceph_id = nullptr;
  int takeover = 0;
  int kernel_vluns = 0;  // a scratch mount of kernel vLUNs (fs/scratch/kernel_vluns_mount.h)
  // Observability: where the log goes, how much of it, and the Prometheus endpoint (off by default).
  char* log_file = nullptr;
  char* log_level = nullptr;
  char* metrics = nullptr;
};

enum { KEY_RO = 1, KEY_THIN = 2 };

const fuse_opt kOptions[] = {
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("thin", KEY_THIN),
    {"direct_io", offsetof(Config, direct_io), 1},
    {"image_direct", offsetof(Config, image_direct), 1},
    {"writeback_cache", offsetof(Config, writeback_cache), 1},
    {"noclone_fd", offsetof(Config, no_clone_fd), 1},
    {"max_threads=%u", offsetof(Config, max_threads), 0},
    {"max_background=%u", offsetof(Config, max_background), 0},
    {"write_behind=%s", offsetof(Config, write_behind), 0},
    {"--backend=%s", offsetof(Config, backend), 0},
    {"backend=%s", offsetof(Config, backend), 0},
    {"ceph_conf=%s", offsetof(Config, ceph_conf), 0},
    {"ceph_id=%s", offsetof(Config, ceph_id), 0},
    {"takeover", offsetof(Config, takeover), 1},
    {"kernel_vluns", offsetof(Config, kernel_vluns), 1},
    {"log=%s", offsetof(Config, log_file), 0},
    {"loglevel=%s", offsetof(Config, log_level), 0},
    {"metrics=%s", offsetof(Config, metrics), 0},
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
      "Mounts a vlunfs flash device or simulated flash image (made by mkfs.vlunfs), or a Ceph RBD\n"
      "image named rbd:POOL/IMAGE. Every regular file is a virtual LUN: truncate provisions it, rm\n"
      "releases its chunks.\n"
      "\n"
      "options:\n"
      "  -f                 stay in the foreground\n"
      "  -d                 debug: foreground, print every FUSE request\n"
      "  -s                 serve requests on one thread\n"
      "  -o ro              read-only mount\n"
      "  -o thin            new files are thin: chunks are allocated on first write, so a vLUN\n"
      "                     may be larger than the flash (ENOSPC comes at write time)\n"
      "  -o allow_other     let other users reach the mount (needs user_allow_other for non-root)\n"
      "  -o direct_io       no page cache for file data: every read and write goes to the daemon;\n"
      "                     mmap(MAP_SHARED) then fails with ENODEV (libfuse 3.14 cannot ask the\n"
      "                     kernel for FUSE_DIRECT_IO_ALLOW_MMAP); MAP_PRIVATE and running programs\n"
      "                     from the mount work\n"
      "  -o writeback_cache the kernel caches writes and sends them later in large pieces (fast\n"
      "                     small writes; errors such as ENOSPC then come at fsync or close); the\n"
      "                     mount's dirty-page limit is raised (bdi max_ratio 100, no strict_limit)\n"
      "  -o image_direct    open the image or block device with O_DIRECT (like qemu's cache=none):\n"
      "                     file data is cached once, in the mount's page cache, not also in the\n"
      "                     image's; fsync still flushes the device. The image's filesystem must\n"
      "                     support direct I/O (ext4, xfs, btrfs; not ramfs)\n"
      "  -o max_threads=N   threads serving requests (default 64)\n"
      "  -o noclone_fd      all threads share one /dev/fuse descriptor (default: one each)\n"
      "  -o max_background=N  asynchronous requests (readahead, writeback) in flight (default 64)\n"
      "  -o write_behind=N  start writing each completed N MiB window of the image to the disk at\n"
      "                     once, so that a large sequential write has little left for its fsync\n"
      "                     (default 8; a size such as 512K or 16M also works; 0 leaves it to the\n"
      "                     kernel's flusher)\n"
      "  --backend=sim|capi the AFU backend (also -o backend=): capi drives a CAPI flash LUN through\n"
      "                     the cxlflash ioctls (a /dev/sgN or /dev/sdX in superpipe mode; the whole\n"
      "                     LUN is opened with USER_DIRECT and vlunfs's persisted chunk maps translate\n"
      "                     on the host, see docs/hardware.md); sim runs the software AFU over an\n"
      "                     image or block device. Default: capi when the device answers\n"
      "                     DK_CXLFLASH_ATTACH, else sim\n"
      "  -o ceph_conf=PATH  for rbd:POOL/IMAGE, the Ceph configuration (default /etc/ceph/ceph.conf)\n"
      "  -o ceph_id=NAME    for rbd:POOL/IMAGE, the Ceph user client.NAME (default admin)\n"
      "  -o takeover        for rbd:POOL/IMAGE, break a dead daemon's lock first (it is blocklisted)\n"
      "  -o kernel_vluns    a scratch mount of a CAPI flash LUN (the capi backend only): one flat\n"
      "                     directory in which every file is a kernel vLUN of the cxlflash driver\n"
      "                     (USER_VIRTUAL, VLUN_RESIZE, RELEASE); no mkfs needed, and nothing is kept\n"
      "                     after unmount: the files and their data are gone\n"
      "  -o log=FILE        append the daemon's messages to FILE (default: syslog where /dev/log\n"
      "                     exists, else stderr, which only -f keeps)\n"
      "  -o loglevel=LEVEL  error, warn, info (default) or debug\n"
      "  -o metrics=[ADDRESS:]PORT  serve the counters in the Prometheus text format on\n"
      "                     GET http://ADDRESS:PORT/metrics (ADDRESS defaults to 127.0.0.1; off\n"
      "                     by default; the same counters as 'vlunctl stats MOUNTPOINT')\n"
      "  -o OPTION[,...]    other FUSE mount options (see mount.fuse3(8))\n"
      "  -h, --help         this text\n"
      "  -V, --version      version\n"
      "\n"
      "Unmount with: umount MOUNTPOINT (or fusermount3 -u MOUNTPOINT)\n",
      prog);
}

// Forks the daemon off: the parent waits until the child reports (report(), below) that the mount
// is up, or why it is not, and exits with that; the child returns with *report_fd to report on.
bool fork_daemon(int* report_fd) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) return false;
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
  *report_fd = pipefd[1];
  setsid();
  (void)!chdir("/");
  return true;
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
      free(conf->backend);
      free(conf->ceph_conf);
      free(conf->ceph_id);
      free(conf->log_file);
      free(conf->log_level);
      free(conf->metrics);
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
  LogSetup log_setup;
  if (conf.log_level != nullptr) {
    auto level = parse_log_level(conf.log_level);
    if (!level) {
      std::fprintf(stderr, "vlunfs: -o loglevel=%s: use error, warn, info or debug\n", conf.log_level);
      return 2;
    }
    log_setup.level = *level;
  }
  if (conf.log_file != nullptr) {
    char resolved_log[PATH_MAX];
    // Absolute: the daemon changes to / when it detaches.
    log_setup.file = conf.log_file[0] == '/' ? std::string(conf.log_file)
                     : realpath(".", resolved_log) ? std::string(resolved_log) + "/" + conf.log_file
                                                   : std::string(conf.log_file);
  }
  {
    if (vlunfs::Error log_refused = log_open(log_setup)) {
      std::fprintf(stderr, "vlunfs: -o log=%s: %s\n", conf.log_file, log_refused.message.c_str());
      return 1;
    }
  }

  if (conf.kernel_vluns) {
    return vlunfs::fs::scratch::serve_kernel_vluns({device, conf.backend ? conf.backend : "auto", opts.mountpoint,
                                                    &args, opts.foreground != 0, log_setup, fork_daemon});
  }

  MountOptions mount_options;
  mount_options.read_only = conf.read_only != 0;
  mount_options.thin = conf.thin != 0;
  mount_options.page_cache = conf.direct_io == 0;
  mount_options.image_direct = conf.image_direct != 0;
  if (conf.write_behind != nullptr) {
    auto window = vlunfs::tools::parse_size(conf.write_behind, uint64_t{1} << 20);
    if (!window || window.value() > (uint64_t{64} << 30)) {
      std::fprintf(stderr, "vlunfs: -o write_behind=%s: %s\n", conf.write_behind,
                   window ? "at most 65536 MiB (64G)" : window.error().message.c_str());
      return 2;
    }
    mount_options.write_behind = window.value();
  }
  if (conf.ceph_conf != nullptr) mount_options.ceph.conf_path = conf.ceph_conf;
  if (conf.ceph_id != nullptr) mount_options.ceph.id = conf.ceph_id;
  mount_options.takeover = conf.takeover != 0;

  int report_fd = -1;
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
  // Before the daemon has forked, on the terminal; after, through the parent that waits for it.
  auto refuse = [&](const std::string& why) {
    if (report_fd >= 0) {
      report(why);
    } else {
      std::fprintf(stderr, "vlunfs: cannot mount: %s\n", why.c_str());
    }
    return 1;
  };
  // librados' threads do not survive fork(): for an RBD image the daemon forks before it connects
  // to the cluster (nor are there AFU contexts to carry over then; the child attaches its own).
  const bool rbd = vlunfs::store::names_rbd_image(device);
  const bool fork_before_open = rbd && !opts.foreground;
  if (fork_before_open && !fork_daemon(&report_fd)) return 1;

  std::string why;
  auto backend = vlunfs::afu::capi::parse_backend(conf.backend ? conf.backend : "auto");
  if (!backend) {
    std::fprintf(stderr, "vlunfs: --backend=%s: give sim, capi or auto\n", conf.backend);
    return 2;
  }
  // On CAPI flash the device store is the whole LUN through the hardware backend; the AFU seen by
  // the vLUN client below translates the persisted chunk maps on the host over it.
  std::function<std::error_code(std::string*)> reattach_device_in_child;
  vlunfs::Result<std::unique_ptr<Filesystem>> opened = vlunfs::errno_error(ENODEV);
  if (vlunfs::afu::capi::use_capi(backend.value(), device)) {
    auto capi = vlunfs::afu::capi::open_capi_device(
        device, mount_options.read_only, [](const std::string& line) { log_error("%s", line.c_str()); }, &why);
    if (!capi) return refuse(why);
    reattach_device_in_child = std::move(capi.value().reattach_in_child);
    opened = Filesystem::open_store(std::move(capi.value().store), mount_options, &why, device);
  } else {
    opened = Filesystem::open(device, mount_options, &why);
  }
  if (!opened) return refuse(why);
  std::unique_ptr<Filesystem> fs = std::move(opened).value();
  // The AFU context is attached here, before the daemon detaches; the daemon process then
  // clones it (VLUN_CLONE, spec §6) and carries on with the same resource handles. The backend
  // is the simulated AFU over the image's data region.
  if (auto ec = fs->start(vlunfs::client::simulated_afu(), &why)) return refuse(why);

  // Permission checks by the kernel; the device's absolute path in /proc/mounts, where umount's
  // helper (umount.fuse.vlunfs) and the tools find which image a mount holds.
  fuse_opt_add_arg(&args, "-odefault_permissions");
  char resolved[PATH_MAX];
  const std::string device_path = !rbd && realpath(device.c_str(), resolved) ? resolved : device;
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
    fuse_session_destroy(se);
    return refuse(std::string("cannot mount on ") + opts.mountpoint);
  }
  // So that `umount MNT` returns only after this daemon has released the image.
  const vlunfs::Error not_recorded = record_umount_helper(device_path, canonical);
  const bool recorded = !not_recorded;
  if (!recorded) {
    log_warning("umount %s will return before this daemon has released %s (%s); vlunfs, vlunctl fsck and "
                "vlunctl info wait for the release", canonical, device_path.c_str(), not_recorded.message.c_str());
  }
  if (!tune_bdi(canonical, tuning.writeback_cache)) {
    log_warning("cannot tune the readahead and dirty limits of %s's bdi (needs root)", canonical);
  }

  // Daemonize by hand rather than with fuse_daemonize(): the child must clone the parent's AFU
  // contexts (a context belongs to the process that attached it, pitfall 21), and the parent
  // waits to report whether that worked, so a failure is seen on the terminal, not in syslog.
  if (!opts.foreground && log_destination() == "stderr") {
    log_info("there is no syslog to write to (%s) and no -o log=FILE: once the daemon detaches its messages are "
             "lost (mount with -f, or -o log=FILE, to keep them)", log_setup.syslog_socket.c_str());
  }
  if (!opts.foreground && !fork_before_open && !fork_daemon(&report_fd)) return 1;

  // A loop device over a vLUN must not wait on memory reclaim that waits on this daemon. Without
  // CAP_SYS_RESOURCE (an unprivileged or containerised daemon) that is the normal case, and it
  // matters only for that loop-device set-up: said once, at info level.
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0) {
    log_debug("marked as an I/O flusher (PR_SET_IO_FLUSHER)");
  } else {
    log_info("not marked as an I/O flusher (PR_SET_IO_FLUSHER: %s, it needs CAP_SYS_RESOURCE); this matters "
             "only for a loop device over a vLUN under heavy memory pressure", std::strerror(errno));
  }

  if (!opts.foreground && !fork_before_open) {
    std::error_code ec;
    if (reattach_device_in_child) ec = reattach_device_in_child(&why);
    if (!ec) ec = fs->adopt_parent_contexts(&why);
    if (ec) {
      report(why);
      fuse_session_unmount(se);
      if (recorded) forget_umount_helper(canonical);
      fuse_session_destroy(se);
      return 1;
    }
  }
  // The Prometheus endpoint, on a thread of the daemon itself (after the fork: threads do not
  // survive one); a port in use is refused here, while the terminal still hears about it.
  std::unique_ptr<MetricsServer> metrics;
  if (conf.metrics != nullptr) {
    Filesystem* served = fs.get();
    auto started = MetricsServer::start(
        conf.metrics, [served] { return render_prometheus(served->pool_stats(), served->metrics_report(), served->report()); });
    if (!started) {
      why = started.error().message;
      if (report_fd < 0) std::fprintf(stderr, "vlunfs: -o metrics=%s: %s\n", conf.metrics, why.c_str());
      report("-o metrics=" + std::string(conf.metrics) + ": " + why);
      fuse_session_unmount(se);
      if (recorded) forget_umount_helper(canonical);
      fuse_session_destroy(se);
      return 1;
    }
    metrics = std::move(started).value();
  }
  if (!opts.foreground) log_detach_from_terminal(log_setup);
  report("");
  log_info("mounted %s on %s (log: %s)", device.c_str(), canonical, log_destination().c_str());
  if (metrics) log_info("serving metrics on port %u (GET /metrics)", metrics->port());
  log_debug("FUSE: up to %u threads, %s descriptor each, %u background requests, direct_io %s, writeback_cache %s",
            tuning.max_threads, tuning.clone_fd ? "a" : "one shared", tuning.max_background,
            tuning.direct_io ? "on" : "off", tuning.writeback_cache ? "on" : "off");

  set_fuse_session(se, opts.singlethread != 0);
  const int rc = run_session(se, tuning, opts.singlethread != 0);
  metrics.reset();  // before the filesystem it reads goes
  fs->shutdown();
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  // Before the image is released (when fs goes, at return): umount.fuse.vlunfs waits for that.
  if (recorded) forget_umount_helper(canonical);
  log_info("unmounted %s", canonical);
  return rc == 0 ? 0 : 1;
}
