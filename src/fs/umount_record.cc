// Records a mount in util-linux's utab so that umount(8) runs umount.fuse.vlunfs (umount_record.h).

#include "fs/umount_record.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace vlunfs::fs {

namespace {

// util-linux's programs where Debian and others put them: a root daemon does not take them from
// a PATH it was given.
std::string util_linux_program(const char* name) {
  for (const char* dir : {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"}) {
    std::string path = std::string(dir) + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return name;
}

// Runs a util-linux command with its output discarded: posix_spawn's errno if it could not start,
// EIO if it ran and failed.
Error run_quietly(const char* const argv[]) {
  const std::string program = util_linux_program(argv[0]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return make_error(spawned, std::string("cannot run ") + argv[0] + ": " + std::strerror(spawned));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error(EIO, std::string(argv[0]) + " --fake failed (exit " +
                               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  return {};
}

}  // namespace

Error record_umount_helper(const std::string& image, const std::string& mountpoint) {
  if (geteuid() != 0) return make_error(EPERM, "not root: /run/mount/utab is root's");
  // --fake: only the table is written; -i: mount's helpers stay out of it; --no-canonicalize:
  // nothing looks at the mountpoint (a stat of it would wait on this daemon, not serving yet).
  const char* argv[] = {"mount", "--fake", "-i", "--no-canonicalize", "-t", "fuse.vlunfs",
                        "-o", "uhelper=fuse.vlunfs", image.c_str(), mountpoint.c_str(), nullptr};
  return run_quietly(argv);
}

void forget_umount_helper(const std::string& mountpoint) {
  // umount(8) removes the entry when it unmounts; fusermount3 -u and umount -i leave it behind.
  const char* argv[] = {"umount", "--fake", "-i", "--no-canonicalize", mountpoint.c_str(), nullptr};
  (void)run_quietly(argv);
}

}  // namespace vlunfs::fs
