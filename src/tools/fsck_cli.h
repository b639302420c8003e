// fsck's command line, shared by `fsck.vlunfs` (which fsck(8) runs for `fsck -t vlunfs`) and
// `vlunctl fsck`: e2fsck's options and fsck(8)'s exit codes (tools/fsck.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace vlunfs::tools {

struct FsckCommandLine {
  std::string device;
  bool check_only = false;  // -n
  bool preen = false;       // -p, -a
  bool repair = false;      // -y, --repair, -r
  bool force = false;       // -f: accepted; every run checks everything
  bool progress = false;    // --progress
  std::string options;      // -o ceph_conf=PATH,ceph_id=NAME for rbd:POOL/IMAGE
};

// Adds fsck's argument and options to `app` (a program of its own, or vlunctl's subcommand).
void add_fsck_options(CLI::App& app, FsckCommandLine* command_line);

// Checks (and repairs, as asked) the device, prints what was found to stdout, and returns the exit
// code (0, 1, 4, 8, or 32 when interrupted).
int run_fsck(const FsckCommandLine& command_line);

}  // namespace vlunfs::tools
