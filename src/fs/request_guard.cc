#include "fs/request_guard.h"

#include "fs/log.h"

namespace vlunfs::fs {

void log_escaped_exception(const char* op, const char* what) noexcept {
  log_error("%s request failed with EIO: unexpected exception: %s", op, what);
}

}  // namespace vlunfs::fs
