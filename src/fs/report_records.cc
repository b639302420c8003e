#include "fs/report_records.h"

#include <charconv>

namespace vlunfs::fs {

namespace {

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return false;
  }
  return true;
}

std::optional<uint64_t> parse_number(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::string escape_record_text(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::optional<std::string> unescape_record_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (++i >= text.size()) return std::nullopt;
    switch (text[i]) {
      case '\\': out += '\\'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'x': {
        if (i + 2 >= text.size()) return std::nullopt;  // two hex digits must follow
        unsigned v = 0;
        auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16);
        if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
        out += static_cast<char>(v);
        i += 2;
        break;
      }
      default: return std::nullopt;
    }
  }
  return out;
}

const RecordField* Record::find(std::string_view key) const {
  for (const RecordField& f : fields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

void RecordWriter::end_line() {
  if (open_) out_ += '\n';
  open_ = false;
}

RecordWriter& RecordWriter::begin(std::string_view type) {
  end_line();
  out_ += type;
  open_ = true;
  return *this;
}

RecordWriter& RecordWriter::text(std::string_view key, std::string_view value) {
  out_ += '\t';
  out_ += key;
  out_ += '=';
  out_ += escape_record_text(value);
  return *this;
}

RecordWriter& RecordWriter::number(std::string_view key, uint64_t value) {
  out_ += '\t';
  out_ += key;
  out_ += '#';
  out_ += std::to_string(value);
  return *this;
}

RecordWriter& RecordWriter::null(std::string_view key) {
  out_ += '\t';
  out_ += key;
  out_ += '#';
  return *this;
}

namespace {

// Text that is not records: from a daemon of another version, or not a report at all.
Error not_records(std::string what) { return make_error(EPROTO, std::move(what)); }

}  // namespace

Result<std::vector<Record>, Error> parse_records(std::string_view text) {
  std::vector<Record> records;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      return not_records("the last record has no end of line");
    }
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    Record r;
    size_t tab = line.find('\t');
    r.type = std::string(line.substr(0, tab));
    if (!valid_key(r.type)) {
      return not_records("record " + std::to_string(line_no) + " has no type");
    }
    while (tab != std::string_view::npos) {
      line.remove_prefix(tab + 1);
      tab = line.find('\t');
      const std::string_view field = line.substr(0, tab);
      const size_t mark = field.find_first_of("=#");
      if (mark == std::string_view::npos || !valid_key(field.substr(0, mark))) {
        return not_records("record " + std::to_string(line_no) + " has a malformed field");
      }
      RecordField f;
      f.key = std::string(field.substr(0, mark));
      const std::string_view value = field.substr(mark + 1);
      if (field[mark] == '#') {
        f.number = true;
        f.null = value.empty();
        if (!f.null && !parse_number(value)) {
          return not_records("record " + std::to_string(line_no) + ": " + f.key + " is not a number");
        }
        f.value = std::string(value);
      } else {
        auto unescaped = unescape_record_text(value);
        if (!unescaped) {
          return not_records("record " + std::to_string(line_no) + ": " + f.key + " has a malformed escape");
        }
        f.value = std::move(*unescaped);
      }
      r.fields.push_back(std::move(f));
    }
    records.push_back(std::move(r));
  }
  return records;
}

std::string chunk_ranges(const std::vector<uint64_t>& chunks) {
  std::string out;
  for (size_t i = 0; i < chunks.size();) {
    size_t run = 1;
    while (i + run < chunks.size() && chunks[i + run] == chunks[i] + run) ++run;
    if (!out.empty()) out += ',';
    out += std::to_string(chunks[i]);
    if (run > 1) out += 'x' + std::to_string(run);
    i += run;
  }
  return out;
}

std::optional<std::vector<uint64_t>> parse_chunk_ranges(std::string_view ranges) {
  std::vector<uint64_t> chunks;
  while (!ranges.empty()) {
    const size_t comma = ranges.find(',');
    const std::string_view item = ranges.substr(0, comma);
    const size_t x = item.find('x');
    auto first = parse_number(item.substr(0, x));
    if (!first) return std::nullopt;
    uint64_t count = 1;
    if (x != std::string_view::npos) {
      auto n = parse_number(item.substr(x + 1));
      if (!n || *n < 2 || *n > (uint64_t{1} << 32)) return std::nullopt;  // a run is 2 or more
      count = *n;
    }
    for (uint64_t i = 0; i < count; ++i) chunks.push_back(*first + i);
    if (comma == std::string_view::npos) break;
    ranges.remove_prefix(comma + 1);
    if (ranges.empty()) return std::nullopt;  // a trailing comma
  }
  return chunks;
}

}  // namespace vlunfs::fs
