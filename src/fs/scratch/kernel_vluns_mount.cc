// The kernel-vLUN scratch mount's program side (kernel_vluns_mount.h): the CAPI check, the
// context, the FUSE session, and the daemon's fork with VLUN_CLONE.
#include "fs/scratch/kernel_vluns_mount.h"

#include "afu/capi/device.h"
#include "fs/scratch/scratch_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace vlunfs::fs::scratch {

namespace {

// The report to the waiting parent (main.cc's fork_daemon): a 0 byte when the mount is up, else
// the reason; before any fork, the terminal.
class StartupReport {
 public:
  int* fd() { return &fd_; }
  int refuse(const std::string& why) {
    if (fd_ < 0) {
      std::fprintf(stderr, "vlunfs: cannot mount: %s\n", why.c_str());
    } else {
      send(why);
    }
    return 1;
  }
  void up() { send(std::string(1, '\0')); }

 private:
  void send(const std::string& message) {
    if (fd_ < 0) return;
    (void)!write(fd_, message.data(), message.size());
    close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

}  // namespace

int serve_kernel_vluns(const KernelVlunsMount& mount) {
  StartupReport report;
  auto backend = afu::capi::parse_backend(mount.backend);
  if (!backend) {
    std::fprintf(stderr, "vlunfs: --backend=%s: give sim, capi or auto\n", mount.backend.c_str());
    return 2;
  }
  if (!afu::capi::use_capi(backend.value(), mount.device)) {
    return report.refuse("-o kernel_vluns needs a CAPI flash LUN (a /dev/sgN or /dev/sdX in superpipe mode, "
                         "docs/hardware.md) and the capi backend: " + mount.device +
                         (backend.value() == afu::capi::Backend::sim ? " was given --backend=sim"
                                                                     : " does not answer DK_CXLFLASH_ATTACH") +
                         "; an image file or other block device is mounted without -o kernel_vluns");
  }
  afu::capi::DirectLunOptions options;
  options.log = [](const std::string& line) { log_error("%s", line.c_str()); };
  std::string why;
  auto files = client::KernelVlunFiles::open(afu::capi::program_kernel(), mount.device, options, &why);
  if (!files) return report.refuse(why);
  ScratchFs fs(std::move(files).value());

  fuse_opt_add_arg(mount.args, "-odefault_permissions");
  char resolved[PATH_MAX];
  const std::string device_path = realpath(mount.device.c_str(), resolved) ? resolved : mount.device;
  const std::string fsname = "-ofsname=" + device_path + ",subtype=vlunfs_scratch";
  fuse_opt_add_arg(mount.args, fsname.c_str());
  fuse_session* se = fuse_session_new(mount.args, &ScratchFs::operations(), sizeof(fuse_lowlevel_ops), &fs);
  if (se == nullptr) return 2;  // libfuse has said which option it does not know
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mount.mountpoint) != 0) {
    fuse_session_destroy(se);
    return report.refuse(std::string("cannot mount on ") + mount.mountpoint);
  }
  if (!mount.foreground) {
    if (!mount.fork_daemon(report.fd())) {
      fuse_session_unmount(se);
      fuse_session_destroy(se);
      return report.refuse("fork of the daemon failed");
    }
    // A context belongs to the process that attached it (spec §3.0): the daemon attaches its own
    // and VLUN_CLONE carries the parent's vLUNs into it (spec §6); the parent's go when it exits.
    if (auto ec = fs.files().clone_in_child(&why)) {
      fuse_session_unmount(se);
      fuse_session_destroy(se);
      return report.refuse(why);
    }
    log_detach_from_terminal(mount.log);
  }
  report.up();
  log_info("mounted %s on %s with -o kernel_vluns: every file a kernel vLUN, nothing kept after unmount",
           mount.device.c_str(), mount.mountpoint);
  // One thread: KernelVlunFiles orders every vLUN's I/O under one lock anyway.
  const int rc = fuse_session_loop(se);
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  log_info("unmounted %s; its %zu kernel vLUNs are released", mount.mountpoint, fs.files().files());
  return rc == 0 ? 0 : 1;
}

}  // namespace vlunfs::fs::scratch
