// fsck.vlunfs: checks (and repairs) an unmounted vlunfs device. fsck(8) runs it for `fsck -t
// vlunfs DEVICE` and for fstab entries of type vlunfs; it is the same check as `vlunctl fsck`.
#include "tools/cli_parse.h"
#include "tools/fsck.h"
#include "tools/fsck_cli.h"

int main(int argc, char** argv) {
  CLI::App app{"fsck.vlunfs: check an unmounted vlunfs flash device or image, and repair it with -p or -y"};
  app.set_version_flag("-V,--version", "fsck.vlunfs 0.1.0");
  vlunfs::tools::FsckCommandLine command_line;
  vlunfs::tools::add_fsck_options(app, &command_line);
  if (auto code = vlunfs::tools::parse_command_line(app, argc, argv, vlunfs::fsck::EXIT_USAGE)) return *code;
  return vlunfs::tools::run_fsck(command_line);
}
