// Sizes on the command line, read by one parser everywhere a program takes a size (mkfs.vlunfs
// --size, vlunfs -o write_behind=, ...): a decimal number, optionally with a fraction, and an
// optional unit K, M, G, T, P, E (also KiB/KB/Ki..., any case), each a power of 1024, as mkfs.ext4
// and truncate(1) read them. "10G", "10GiB", "1.5T", "4096" and "4096B" are sizes; "-1", "0x10",
// "1e3" and "12Q" are refused, each with a message that says why.
#pragma once

#include "vlunfs/error.h"

#include <cstdint>
#include <optional>
#include <string>

namespace vlunfs::tools {

// The number of bytes `text` means, or nullopt with the reason in *why (a phrase such as
// "'-1' is negative: a size is a positive number ..."). A number without a unit counts
// `default_unit` bytes each (1 for most sizes; an option historically in MiB passes 1 << 20).
// A fraction must come to a whole number of bytes ("1.5T" does, "1.3" does not).
Result<uint64_t, Error> parse_size(const std::string& text, uint64_t default_unit = 1);

// "1.5 GiB": for messages.
std::string human_size(uint64_t bytes);

}  // namespace vlunfs::tools
