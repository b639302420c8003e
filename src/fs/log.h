// Logging for the daemon. Where messages go (log_open): to the file of -o log=FILE when one is
// given; else to syslog when there is one to reach (/dev/log), and to stderr as well while the
// daemon is in the foreground; else (containers, CI machines without a syslog daemon) to stderr
// only, so that with -f nothing is lost. Messages below the level of -o loglevel= are dropped.
#pragma once

#include "vlunfs/error.h"

#include <cstdarg>
#include <optional>
#include <string>

namespace vlunfs::fs {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// "error", "warn" (or "warning"), "info", "debug"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(const std::string& name);

struct LogSetup {
  const char* ident = "vlunfs";
  bool to_stderr = true;    // the terminal is still ours (foreground, or not yet detached)
  std::string file;         // -o log=FILE; empty for syslog/stderr
  LogLevel level = LogLevel::info;
  std::string syslog_socket = "/dev/log";  // tests point it elsewhere
};

// Applies `setup`; call again when the daemon detaches (to_stderr false). A log file that cannot
// be opened is an error the caller reports (its errno, and a message naming the file), and the
// previous destination stays.
Error log_open(const LogSetup& setup);
// A daemon that leaves the terminal: stdin, stdout and stderr go to /dev/null, and the log is
// opened again with `setup` but to_stderr false (a file already open stays the same file).
void log_detach_from_terminal(LogSetup setup);
// The same with the defaults of LogSetup but these two (what tests and tools call).
void log_open(const char* ident, bool to_stderr);
// Where messages go now, for the mount's first info line ("syslog", "stderr", "FILE").
std::string log_destination();
// Before log_open: the level only.
void log_set_level(LogLevel level);

[[gnu::format(printf, 1, 2)]] void log_error(const char* fmt, ...);
[[gnu::format(printf, 1, 2)]] void log_warning(const char* fmt, ...);
[[gnu::format(printf, 1, 2)]] void log_info(const char* fmt, ...);
[[gnu::format(printf, 1, 2)]] void log_debug(const char* fmt, ...);

}  // namespace vlunfs::fs
