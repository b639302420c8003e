// How vlunctl prints what it reads (the daemon's records, fs/report_records.h, or those it makes
// of an unmounted image): tables in the manner of lsblk and findmnt through libsmartcols (-o
// COLUMNS, -n no headings, -r raw with unsafe bytes escaped as \xHH), or JSON (-J/--json) with
// a schema version (docs/vlunctl-json.md).
#pragma once

#include "fs/report_records.h"

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace vlunfs::tools {

constexpr int kJsonSchema = 1;  // docs/vlunctl-json.md: bumped when a field changes meaning or goes

struct OutputOptions {
  bool json = false;
  bool raw = false;
  bool no_headings = false;
  std::string columns;  // -o: COL,COL (case-insensitive); "+COL,..." adds to the default ones
};

// RFC 8259 string: quotes, backslash and control characters escaped; other bytes as they are.
std::string json_quote(std::string_view text);
// A record as a JSON object: number fields as numbers (null without a value), dotted keys as
// nested objects ("read.requests" -> {"read": {"requests": N}}).
std::string record_to_json(const fs::Record& record);
// The document of one command: {"schema": 1, "command": COMMAND, ...}, where every record of a
// type in `list_types` goes into an array named after the type plus "s" (vlun -> "vluns") and a
// record of any other type is the object of its name ("pool").
std::string document_to_json(std::string_view command, const std::vector<fs::Record>& records,
                             const std::vector<std::string>& list_types);

// The table column of a key: upper case, dots as underscores (read.requests -> READ_REQUESTS).
std::string column_name(std::string_view key);

// Prints `rows` as a table; `default_columns` are keys. A column asked for with -o that no key
// has is an error (EINVAL, saying which; ENOMEM when the table cannot be made).
Error print_table(std::FILE* out, const std::vector<const fs::Record*>& rows, const std::vector<std::string>& default_columns,
                  const OutputOptions& options);
// One record as FIELD VALUE lines (vlunctl info); -o names the fields.
Error print_fields(std::FILE* out, const fs::Record& record, const OutputOptions& options);

}  // namespace vlunfs::tools
