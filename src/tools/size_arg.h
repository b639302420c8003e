// Sizes on the command line: a number with an optional K/M/G/T/P suffix (powers of 1024).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vlunfs::tools {

inline std::optional<uint64_t> parse_size(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t pos = 0;
  unsigned long long value;
  try {
    value = std::stoull(text, &pos, 10);
  } catch (...) {
    return std::nullopt;
  }
  std::string suffix = text.substr(pos);
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    switch (suffix[0]) {
      case 'K': case 'k': shift = 10; break;
      case 'M': case 'm': shift = 20; break;
      case 'G': case 'g': shift = 30; break;
      case 'T': case 't': shift = 40; break;
      case 'P': case 'p': shift = 50; break;
      default: return std::nullopt;
    }
    std::string rest = suffix.substr(1);
    if (!(rest.empty() || rest == "B" || rest == "iB")) return std::nullopt;
  }
  if (shift && value > (~0ULL >> shift)) return std::nullopt;
  return static_cast<uint64_t>(value) << shift;
}

inline std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace vlunfs::tools
