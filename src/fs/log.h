// Logging for the daemon: stderr while in the foreground, syslog always (a daemon's stderr is
// /dev/null once it detaches).
#pragma once

#include <cstdarg>

namespace vlunfs::fs {

void log_open(const char* ident, bool to_stderr);
[[gnu::format(printf, 1, 2)]] void log_error(const char* fmt, ...);
[[gnu::format(printf, 1, 2)]] void log_warning(const char* fmt, ...);
[[gnu::format(printf, 1, 2)]] void log_info(const char* fmt, ...);

}  // namespace vlunfs::fs
