#include "fs/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace vlunfs::fs {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<bool> g_stderr{true};
std::atomic<bool> g_syslog{false};
std::mutex g_file_mu;  // one line at a time in the file
int g_file_fd = -1;
std::string g_file_name;
std::string g_ident = "vlunfs";

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error: return "error";
    case LogLevel::warn: return "warning";
    case LogLevel::info: return "info";
    case LogLevel::debug: return "debug";
  }
  return "?";
}

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::error: return LOG_ERR;
    case LogLevel::warn: return LOG_WARNING;
    case LogLevel::info: return LOG_INFO;
    case LogLevel::debug: return LOG_DEBUG;
  }
  return LOG_INFO;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

void vlog(LogLevel level, const char* fmt, va_list args) {
  if (static_cast<int>(level) > g_level.load(std::memory_order_relaxed)) return;
  char message[2048];
  std::vsnprintf(message, sizeof message, fmt, args);
  if (g_syslog) syslog(syslog_priority(level), "%s", message);
  {
    std::lock_guard lock(g_file_mu);
    if (g_file_fd >= 0) {
      // One write per line (O_APPEND), so lines of several threads do not mix.
      char stamp[40];
      struct timespec now {};
      clock_gettime(CLOCK_REALTIME, &now);
      struct tm utc {};
      gmtime_r(&now.tv_sec, &utc);
      std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
      char line[2200];
      const int n = std::snprintf(line, sizeof line, "%s.%03ldZ %s[%d] %s: %s\n", stamp, now.tv_nsec / 1000000,
                                  g_ident.c_str(), static_cast<int>(getpid()), level_name(level), message);
      if (n > 0) (void)!::write(g_file_fd, line, std::min<size_t>(static_cast<size_t>(n), sizeof line - 1));
    }
  }
  if (g_stderr) {
    const char* prefix = level == LogLevel::error ? "error: " : level == LogLevel::warn ? "warning: " : "";
    std::fprintf(stderr, "%s: %s%s\n", g_ident.c_str(), prefix, message);
  }
}

}  // namespace

std::optional<LogLevel> parse_log_level(const std::string& name) {
  if (name == "error") return LogLevel::error;
  if (name == "warn" || name == "warning") return LogLevel::warn;
  if (name == "info") return LogLevel::info;
  if (name == "debug") return LogLevel::debug;
  return std::nullopt;
}

void log_set_level(LogLevel level) { g_level = static_cast<int>(level); }

Error log_open(const LogSetup& setup) {
  int fd = -1;
  if (!setup.file.empty()) {
    fd = ::open(setup.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
      const int e = errno;
      return make_error(e, "cannot open the log file " + setup.file + ": " + std::strerror(e));
    }
  }
  g_level = static_cast<int>(setup.level);
  {
    std::lock_guard lock(g_file_mu);
    g_ident = setup.ident;
    if (fd >= 0 || setup.file.empty()) {
      if (g_file_fd >= 0 && g_file_fd != fd) ::close(g_file_fd);
      g_file_fd = fd;
      g_file_name = setup.file;
    }
  }
  const bool use_syslog = setup.file.empty() && is_socket(setup.syslog_socket);
  if (use_syslog && !g_syslog) openlog(setup.ident, LOG_PID, LOG_DAEMON);
  g_syslog = use_syslog;
  // With a file, stderr carries only what the terminal must see while it is there.
  g_stderr = setup.to_stderr;
  return {};
}

void log_open(const char* ident, bool to_stderr) {
  LogSetup setup;
  setup.ident = ident;
  setup.to_stderr = to_stderr;
  setup.level = static_cast<LogLevel>(g_level.load());
  (void)log_open(setup);
}

void log_detach_from_terminal(LogSetup setup) {
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
  }
  setup.to_stderr = false;
  (void)log_open(setup);
}

std::string log_destination() {
  std::lock_guard lock(g_file_mu);
  if (g_file_fd >= 0) return g_file_name;
  if (g_syslog) return g_stderr ? "syslog and stderr" : "syslog";
  return g_stderr ? "stderr" : "nowhere";
}

#define VLUNFS_LOG_FN(name, level)  \
  void name(const char* fmt, ...) { \
    va_list args;                   \
    va_start(args, fmt);            \
    vlog(level, fmt, args);         \
    va_end(args);                   \
  }
VLUNFS_LOG_FN(log_error, LogLevel::error)
VLUNFS_LOG_FN(log_warning, LogLevel::warn)
VLUNFS_LOG_FN(log_info, LogLevel::info)
VLUNFS_LOG_FN(log_debug, LogLevel::debug)
#undef VLUNFS_LOG_FN

}  // namespace vlunfs::fs
