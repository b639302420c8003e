// The answers of VLUNFS_IOC_REPORT (control_ioctl.h, version 2) are records, not text for
// people: vlunctl renders them as a table, raw rows or JSON (docs/vlunctl-json.md). One record
// a line:
//     TYPE<TAB>KEY=TEXT<TAB>KEY#NUMBER<TAB>KEY#<TAB>...
// `=` introduces a string, `#` an unsigned decimal number (nothing after it: no value, JSON null).
// Strings are escaped so that no record can break its line or its fields: backslash, tab,
// newline and every other byte below 0x20 or 0x7f become \\, \t, \n or \xHH. Keys are
// [a-z0-9_.]; a dot nests (read.requests is "requests" inside "read").
#pragma once

#include "vlunfs/error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vlunfs::fs {

std::string escape_record_text(std::string_view text);
// nullopt for a malformed escape.
std::optional<std::string> unescape_record_text(std::string_view text);

struct RecordField {
  std::string key;
  std::string value;  // unescaped
  bool number = false;
  bool null = false;  // a number field without a value
};

struct Record {
  std::string type;
  std::vector<RecordField> fields;
  const RecordField* find(std::string_view key) const;
};

class RecordWriter {
 public:
  RecordWriter& begin(std::string_view type);
  RecordWriter& text(std::string_view key, std::string_view value);
  RecordWriter& number(std::string_view key, uint64_t value);
  RecordWriter& null(std::string_view key);
  // The records so far, each ended by a newline.
  const std::string& str() {
    end_line();
    return out_;
  }

 private:
  void end_line();
  std::string out_;
  bool open_ = false;
};

// EPROTO, saying which record is wrong and how, for text that is not records.
Result<std::vector<Record>, Error> parse_records(std::string_view text);

// Physical chunk lists in ranges: runs of consecutive chunks as FIRSTxCOUNT, single chunks as
// the number, comma-separated, in vLUN order ("77x400,12" is 77..476 then 12); "" for none.
std::string chunk_ranges(const std::vector<uint64_t>& chunks);
std::optional<std::vector<uint64_t>> parse_chunk_ranges(std::string_view ranges);

}  // namespace vlunfs::fs
