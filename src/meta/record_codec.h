// Records as journal payloads: the encoding of each Record alternative (docs/format.md, "Record
// payloads"). The decoder is the fuzzed side: it trusts no length or count it reads.
#pragma once

#include "meta/format.h"
#include "vlunfs/error.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/record.h"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace vlunfs::meta {

RecordType record_type(const Record& record);

// ENAMETOOLONG if a name or symlink target is too long to encode (apply() refuses those too), so
// that encode_record() never has to truncate.
std::error_code check_encodable(const Record& record);

// The payload of `record`. Requires check_encodable(record) to have passed.
std::vector<std::byte> encode_record(const Record& record);

// Decodes a payload of the given type; EUCLEAN saying what is wrong if it is not exactly one valid
// encoding.
Result<Record, Error> decode_record(uint8_t type, std::span<const std::byte> payload);

}  // namespace vlunfs::meta
