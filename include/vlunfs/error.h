// Errors cross layers as errno-valued std::error_code (style.md); Result<T> carries a value or one.
#pragma once

#include <boost/outcome/std_result.hpp>

#include <cerrno>
#include <system_error>

namespace vlunfs {

template <class T>
using Result = boost::outcome_v2::std_result<T>;

inline std::error_code errno_error(int e) { return {e, std::generic_category()}; }
// The errno of the calling thread, as an error code.
inline std::error_code last_errno() { return errno_error(errno); }

}  // namespace vlunfs
