// Records a mount in util-linux's utab so that umount(8) runs umount.fuse.vlunfs (umount_record.h).

#include "fs/umount_record.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace vlunfs::fs {

bool record_umount_helper(const std::string& image, const std::string& mountpoint, std::string* why) {
  if (geteuid() != 0) {
    *why = "not root: /run/mount/utab is root's";
    return false;
  }
  // --fake: only the table is written; -i: mount's helpers stay out of it; --no-canonicalize:
  // nothing looks at the mountpoint (a stat of it would wait on this daemon, not serving yet).
  const char* argv[] = {"mount", "--fake", "-i", "--no-canonicalize", "-t", "fuse.vlunfs",
                        "-o", "uhelper=fuse.vlunfs", image.c_str(), mountpoint.c_str(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, "mount", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    *why = std::string("cannot run mount: ") + std::strerror(spawned);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *why = "mount --fake failed (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    return false;
  }
  return true;
}

}  // namespace vlunfs::fs
