// How much work a randomized test does: the environment variable `name` when it is set to a
// positive number (longer opt-in runs), else `normal`, or `sanitized` in an ASan/TSan build, which
// runs several times slower.
#pragma once

#include <cstdlib>

namespace vlunfs::testing_support {

inline int iterations_from_env(const char* name, int normal, int sanitized) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const int fallback = sanitized;
#else
  const int fallback = normal;
  (void)sanitized;
#endif
  const char* env = std::getenv(name);
  const int n = env ? std::atoi(env) : 0;
  return n > 0 ? n : fallback;
}

}  // namespace vlunfs::testing_support
