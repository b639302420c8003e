// Where an exception from a request's handler stops. It must not unwind into libfuse (a C library)
// and take the daemon down, so it becomes the request's errno. Errors are values everywhere else
// (style.md); what can still throw is the standard library: an allocation (std::bad_alloc ->
// ENOMEM) or a broken invariant such as a failed .at() (anything else -> EIO, and a log line,
// since it is a bug).
#pragma once

#include <cerrno>
#include <exception>
#include <new>

namespace vlunfs::fs {

// Logs an exception that escaped the handler of request `op`.
void log_escaped_exception(const char* op, const char* what) noexcept;

// Runs handler(); 0 when it returned, else the errno to answer the request with.
template <typename Handler>
int run_guarded(const char* op, Handler&& handler) noexcept {
  try {
    handler();
    return 0;
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (const std::exception& e) {
    log_escaped_exception(op, e.what());
    return EIO;
  } catch (...) {
    log_escaped_exception(op, "an exception of unknown type");
    return EIO;
  }
}

}  // namespace vlunfs::fs
