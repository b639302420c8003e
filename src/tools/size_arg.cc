// The size parser (size_arg.h). CLI11's AsSizeValue knows the units and their factors; the number
// in front of the unit is read here, because CLI11 reads it with strtoull in base 0: "-1" would
// wrap to 2^64 - 1, "010" would be octal, and a fraction ("1.5T") would not be read at all.
#include "tools/size_arg.h"

#include <CLI/Error.hpp>  // Validators.hpp uses it without including it
#include <CLI/Validators.hpp>

#include <cctype>
#include <cstdio>

namespace vlunfs::tools {

namespace {

__extension__ typedef unsigned __int128 Wide;  // a size times a unit's factor, before the range check

constexpr const char* kForm = "a size is a number of bytes with an optional unit K, M, G, T, P or E (powers of 1024), e.g. 64G or 1.5T";

Error refuse(const std::string& what) { return make_error(EINVAL, what); }

// The factor of a unit ("G", "GiB", "kb", "B", any case), from CLI11's table of sizes.
std::optional<uint64_t> unit_factor(const std::string& unit) {
  static const CLI::AsSizeValue sizes(/*kb_is_1000=*/false);
  std::string one = "1" + unit;
  try {
    if (!sizes(one).empty()) return std::nullopt;
    return std::stoull(one);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Result<uint64_t, Error> parse_size(const std::string& input, uint64_t default_unit) {
  size_t begin = input.find_first_not_of(" \t");
  size_t end = input.find_last_not_of(" \t");
  const std::string text = begin == std::string::npos ? "" : input.substr(begin, end - begin + 1);
  const std::string quoted = "'" + input + "'";
  if (text.empty()) return refuse("an empty size: " + std::string(kForm));
  if (text[0] == '-') return refuse(quoted + " is negative: " + kForm);

  size_t at = 0;
  std::string whole, fraction;
  while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) whole += text[at++];
  if (at < text.size() && text[at] == '.') {
    at++;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) fraction += text[at++];
  }
  while (at < text.size() && text[at] == ' ') at++;
  const std::string unit = text.substr(at);
  bool unit_is_letters = true;
  for (char c : unit) unit_is_letters = unit_is_letters && std::isalpha(static_cast<unsigned char>(c));
  if ((whole.empty() && fraction.empty()) || !unit_is_letters) {
    return refuse(quoted + " is not a size: " + kForm);
  }
  uint64_t factor = default_unit;
  if (!unit.empty()) {
    auto f = unit_factor(unit);
    if (!f) return refuse(quoted + ": unknown unit '" + unit + "': " + kForm);
    factor = *f;
  }
  const std::string too_large = quoted + " is too large: at most 2^64 - 1 bytes";
  if (fraction.size() > 18) return refuse(quoted + ": more decimals than a size needs");

  Wide bytes = 0;
  for (char c : whole) {
    bytes = bytes * 10 + static_cast<unsigned>(c - '0');
    if (bytes > UINT64_MAX) return refuse(too_large);
  }
  bytes *= factor;
  if (!fraction.empty()) {
    Wide scale = 1, part = 0;
    for (char c : fraction) {
      part = part * 10 + static_cast<unsigned>(c - '0');
      scale *= 10;
    }
    part *= factor;  // below 10^18 * 2^60: no overflow in 128 bits
    if (part % scale != 0) return refuse(quoted + " is not a whole number of bytes");
    bytes += part / scale;
  }
  if (bytes > UINT64_MAX) return refuse(too_large);
  return static_cast<uint64_t>(bytes);
}

std::string human_size(uint64_t bytes) {
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
