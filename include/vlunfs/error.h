// Errors cross layers as values (style.md): an errno-valued std::error_code that callers test, and,
// where a person will read it, an Error that also says what failed and where.
//
// Result<T> carries a value or a code; Result<T, Error> a value or an Error. A bare code converts
// to an Error (its message is then the code's own, e.g. "Input/output error"), so a function that
// returns Result<T, Error> can return the code of a layer below as it is, and a caller that only
// tests the code reads result.error().value() either way. An operation with no value returns an
// Error on its own, which, as a std::error_code, is false when nothing failed:
//   if (auto err = fs.start(...)) report(err.message);
#pragma once

#include <boost/outcome/std_result.hpp>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace vlunfs {

struct Error {
  std::error_code code;  // errno-valued: what a caller tests, and what becomes a FUSE reply
  std::string message;   // for people: what failed and where ("superblock copy 1 at byte 4096: ...")

  Error() = default;
  Error(std::error_code c) : code(c), message(c.message()) {}  // NOLINT(google-explicit-constructor)
  Error(std::error_code c, std::string what) : code(c), message(std::move(what)) {}

  explicit operator bool() const { return static_cast<bool>(code); }  // true when something failed
  int value() const { return code.value(); }
  // The same error as a caller one level up says it: "<where>: <message>".
  Error within(const std::string& where) const { return {code, where + ": " + message}; }
};

template <class T, class E = std::error_code>
using Result = boost::outcome_v2::std_result<T, E>;

inline std::error_code errno_error(int e) { return {e, std::generic_category()}; }
// The errno of the calling thread, as an error code.
inline std::error_code last_errno() { return errno_error(errno); }
// An errno-valued Error with its message.
inline Error make_error(int e, std::string what) { return {errno_error(e), std::move(what)}; }

// Outcome's hooks (found by argument-dependent lookup): the code inside an Error, and what
// .value() of a Result<T, Error> that holds an error throws.
inline std::error_code make_error_code(const Error& e) { return e.code; }
[[noreturn]] inline void outcome_throw_as_system_error_with_payload(const Error& e) {
  throw std::system_error(e.code, e.message);
}

}  // namespace vlunfs
