#include "fs/log.h"

#include <syslog.h>

#include <atomic>
#include <cstdio>

namespace vlunfs::fs {

namespace {
std::atomic<bool> g_stderr{true};

void vlog(int priority, const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  vsyslog(priority, fmt, args);
  if (g_stderr) {
    std::fputs("vlunfs: ", stderr);
    std::vfprintf(stderr, fmt, copy);
    std::fputc('\n', stderr);
  }
  va_end(copy);
}
}  // namespace

void log_open(const char* ident, bool to_stderr) {
  openlog(ident, LOG_PID, LOG_DAEMON);
  g_stderr = to_stderr;
}

#define VLUNFS_LOG_FN(name, prio)   \
  void name(const char* fmt, ...) { \
    va_list args;                   \
    va_start(args, fmt);            \
    vlog(prio, fmt, args);          \
    va_end(args);                   \
  }
VLUNFS_LOG_FN(log_error, LOG_ERR)
VLUNFS_LOG_FN(log_warning, LOG_WARNING)
VLUNFS_LOG_FN(log_info, LOG_INFO)
#undef VLUNFS_LOG_FN

}  // namespace vlunfs::fs
