#include "tools/fsck_cli.h"

#include "store/rbd/named_store.h"
#include "tools/fsck.h"

#include <csignal>
#include <cstdio>
#include <unistd.h>

namespace vlunfs::tools {

namespace {

// fsck(8)'s code 32. Stopping a repair half way is what a power cut does to it, and the metadata
// is made for that (a new checkpoint is only in use once its superblock copy is written).
void cancelled(int) {
  static const char text[] = "fsck: cancelled\n";
  (void)!::write(STDERR_FILENO, text, sizeof text - 1);
  ::_exit(fsck::EXIT_CANCELLED);
}

}  // namespace

void add_fsck_options(CLI::App& app, FsckCommandLine* cl) {
  app.add_option("DEVICE_OR_IMAGE", cl->device, "an unmounted vlunfs device or image")->required();
  auto* n = app.add_flag("-n,--check-only", cl->check_only,
                         "check only: open the device read-only and change nothing (also what happens without "
                         "-p or -y)");
  auto* p = app.add_flag("-p,-a,--preen", cl->preen,
                         "preen: make the safe repairs without asking (link counts, '..' entries, orphans, a damaged "
                         "superblock copy or checkpoint slot); if a problem needs -y, change nothing and exit 4");
  auto* y = app.add_flag("-y,-r,--yes,--repair", cl->repair,
                         "repair everything fsck can repair without guessing: what -p does, and also remove "
                         "directory entries that name missing inodes and link unnamed inodes into /lost+found");
  n->excludes(p, y);
  p->excludes(y);
  app.add_flag("-f,--force", cl->force, "accepted for fsck(8)'s sake: every run checks everything");
  app.add_option("-o,--options", cl->options,
                 "for rbd:POOL/IMAGE: ceph_conf=PATH (default /etc/ceph/ceph.conf), ceph_id=NAME (default admin)");
  app.add_flag("--progress", cl->progress, "a progress line on stderr (the default on a terminal, unless preening)");
  app.footer(
      "Exit codes (fsck(8)): 0 no errors, 1 errors corrected, 4 errors left uncorrected, 8 operational error "
      "(e.g. the device is mounted or unreadable), 16 usage error, 32 cancelled.");
}

int run_fsck(const FsckCommandLine& cl) {
  std::signal(SIGINT, cancelled);
  std::signal(SIGTERM, cancelled);
  fsck::Options options;
  std::string unknown, why;
  bool takeover = false;
  if (!store::take_ceph_options(cl.options, &options.ceph, &takeover, &unknown, &why) || takeover || !unknown.empty()) {
    std::fprintf(stderr, "fsck: %s\n", !why.empty() ? why.c_str() : ("-o " + cl.options + ": only ceph_conf=PATH and ceph_id=NAME").c_str());
    return fsck::EXIT_USAGE;
  }
  options.repair = cl.repair;
  options.preen = cl.preen;
  options.progress = cl.progress || (!cl.preen && ::isatty(STDERR_FILENO));
  fsck::Report r = fsck::run(cl.device, options);
  for (const auto& n : r.notes()) std::printf("note: %s\n", n.c_str());
  for (const auto& e : r.errors()) std::printf("error: %s\n", e.c_str());
  for (const auto& f : r.repairs()) std::printf("fixed: %s\n", f.c_str());
  const char* verdict = r.exit_code == fsck::EXIT_CLEAN         ? "clean"
                        : r.exit_code == fsck::EXIT_FIXED       ? "errors fixed"
                        : r.exit_code == fsck::EXIT_ERRORS_LEFT ? "ERRORS LEFT (run fsck -y)"
                                                                : "could not check";
  if (r.exit_code == fsck::EXIT_ERRORS_LEFT && cl.repair) verdict = "ERRORS LEFT (fsck cannot repair them)";
  std::printf("%s: %llu inodes (%llu files, %llu directories, %llu symlinks, %llu orphans), "
              "%llu of %llu chunks mapped (%llu shared), %llu free: %s\n",
              cl.device.c_str(), static_cast<unsigned long long>(r.inodes), static_cast<unsigned long long>(r.files),
              static_cast<unsigned long long>(r.directories), static_cast<unsigned long long>(r.symlinks),
              static_cast<unsigned long long>(r.orphans), static_cast<unsigned long long>(r.chunks_used),
              static_cast<unsigned long long>(r.chunks_total), static_cast<unsigned long long>(r.chunks_shared),
              static_cast<unsigned long long>(r.chunks_free), verdict);
  std::fflush(stdout);
  return r.exit_code;
}

}  // namespace vlunfs::tools
