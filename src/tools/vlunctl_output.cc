#include "tools/vlunctl_output.h"

#include <libsmartcols.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace vlunfs::tools {

namespace {

// A JSON object being built from dotted keys, members in the order first seen.
struct JsonNode {
  std::string key;
  std::string scalar;  // rendered JSON value, for a leaf
  std::vector<JsonNode> members;
  bool object = false;

  JsonNode& member(const std::string& name) {
    for (JsonNode& m : members) {
      if (m.key == name) return m;
    }
    members.push_back(JsonNode{name, {}, {}, false});
    return members.back();
  }
  void render(std::string* out) const {
    if (!object) {
      *out += scalar;
      return;
    }
    *out += '{';
    for (size_t i = 0; i < members.size(); ++i) {
      if (i) *out += ", ";
      *out += json_quote(members[i].key);
      *out += ": ";
      members[i].render(out);
    }
    *out += '}';
  }
};

std::string cell_text(const fs::RecordField* f) {
  if (f == nullptr || f->null) return "-";
  if (!f->number && f->value.empty()) return "-";
  return f->value;
}

std::vector<std::string> split_columns(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string item(list.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

bool same_column(std::string_view asked, std::string_view key) {
  const std::string name = column_name(key);
  if (asked.size() != name.size()) return false;
  for (size_t i = 0; i < asked.size(); ++i) {
    const char a = static_cast<char>(std::toupper(static_cast<unsigned char>(asked[i])));
    if (a != name[i] && !(asked[i] == '.' && name[i] == '_')) return false;
  }
  return true;
}

// The keys -o asks for, from the default ones and every key the rows have.
// EINVAL naming the column and the columns there are for one no key has.
Result<std::vector<std::string>, Error> chosen_keys(const std::vector<std::string>& all_keys,
                                                    const std::vector<std::string>& defaults,
                                                    const std::string& option) {
  if (option.empty()) return defaults;
  std::string_view list = option;
  std::vector<std::string> keys;
  if (list.front() == '+') {
    keys = defaults;
    list.remove_prefix(1);
  }
  for (const std::string& asked : split_columns(list)) {
    auto it = std::find_if(all_keys.begin(), all_keys.end(), [&](const std::string& k) { return same_column(asked, k); });
    if (it == all_keys.end()) {
      std::string known;
      for (const std::string& k : all_keys) known += (known.empty() ? "" : ",") + column_name(k);
      return make_error(EINVAL, "unknown column '" + asked + "' (columns: " + known + ")");
    }
    keys.push_back(*it);
  }
  return keys;
}

Error out_of_memory() { return make_error(ENOMEM, "out of memory"); }

struct TableDeleter {
  void operator()(libscols_table* t) const { scols_unref_table(t); }
};
using Table = std::unique_ptr<libscols_table, TableDeleter>;

// A table printed to `out` in the form the options ask for; null when out of memory.
Table new_table(std::FILE* out, const OutputOptions& options) {
  Table table(scols_new_table());
  if (!table) return table;
  scols_table_enable_raw(table.get(), options.raw ? 1 : 0);
  scols_table_enable_noheadings(table.get(), options.no_headings ? 1 : 0);
  scols_table_set_stream(table.get(), out);
  return table;
}

}  // namespace

std::string json_quote(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string record_to_json(const fs::Record& record) {
  JsonNode root;
  root.object = true;
  for (const fs::RecordField& f : record.fields) {
    JsonNode* node = &root;
    std::string_view key = f.key;
    for (size_t dot; (dot = key.find('.')) != std::string_view::npos; key.remove_prefix(dot + 1)) {
      node = &node->member(std::string(key.substr(0, dot)));
      node->object = true;
    }
    JsonNode& leaf = node->member(std::string(key));
    leaf.scalar = f.null ? "null" : f.number ? f.value : json_quote(f.value);
  }
  std::string out;
  root.render(&out);
  return out;
}

std::string document_to_json(std::string_view command, const std::vector<fs::Record>& records,
                             const std::vector<std::string>& list_types) {
  std::string out = "{\"schema\": " + std::to_string(kJsonSchema) + ", \"command\": " + json_quote(command);
  std::vector<std::string> done;
  for (const fs::Record& r : records) {
    if (std::find(done.begin(), done.end(), r.type) != done.end()) continue;
    done.push_back(r.type);
    if (std::find(list_types.begin(), list_types.end(), r.type) == list_types.end()) {
      out += ",\n \"" + r.type + "\": " + record_to_json(r);
      continue;
    }
    out += ",\n \"" + r.type + "s\": [";
    bool first = true;
    for (const fs::Record& same : records) {
      if (same.type != r.type) continue;
      out += first ? "\n  " : ",\n  ";
      out += record_to_json(same);
      first = false;
    }
    out += first ? "]" : "\n ]";
  }
  // A list type with no record is an empty list, not a missing member.
  for (const std::string& t : list_types) {
    if (std::find(done.begin(), done.end(), t) == done.end()) out += ",\n \"" + t + "s\": []";
  }
  return out + "\n}\n";
}

std::string column_name(std::string_view key) {
  std::string name(key);
  for (char& c : name) c = c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

Error print_table(std::FILE* out, const std::vector<const fs::Record*>& rows, const std::vector<std::string>& default_columns,
                  const OutputOptions& options) {
  std::vector<std::string> all_keys = default_columns;
  for (const fs::Record* r : rows) {
    for (const fs::RecordField& f : r->fields) {
      if (std::find(all_keys.begin(), all_keys.end(), f.key) == all_keys.end()) all_keys.push_back(f.key);
    }
  }
  auto chosen = chosen_keys(all_keys, default_columns, options.columns);
  if (!chosen) return chosen.error();
  const std::vector<std::string>& keys = chosen.value();
  Table table = new_table(out, options);
  if (!table) {
    return out_of_memory();
  }
  for (const std::string& key : keys) {
    // Numbers right-aligned, as lsblk does; the first row decides what a column holds.
    bool number = false;
    for (const fs::Record* r : rows) {
      if (const fs::RecordField* f = r->find(key)) {
        number = f->number;
        break;
      }
    }
    if (!scols_table_new_column(table.get(), column_name(key).c_str(), 0, number ? SCOLS_FL_RIGHT : 0)) {
      return out_of_memory();
    }
  }
  for (const fs::Record* r : rows) {
    libscols_line* line = scols_table_new_line(table.get(), nullptr);
    if (!line) {
      return out_of_memory();
    }
    for (size_t i = 0; i < keys.size(); ++i) scols_line_set_data(line, i, cell_text(r->find(keys[i])).c_str());
  }
  scols_print_table(table.get());
  return {};
}

Error print_fields(std::FILE* out, const fs::Record& record, const OutputOptions& options) {
  std::vector<std::string> keys;
  for (const fs::RecordField& f : record.fields) keys.push_back(f.key);
  auto chosen = chosen_keys(keys, keys, options.columns);
  if (!chosen) return chosen.error();
  Table table = new_table(out, options);
  if (!table) {
    return out_of_memory();
  }
  scols_table_new_column(table.get(), "FIELD", 0, 0);
  scols_table_new_column(table.get(), "VALUE", 0, 0);
  for (const std::string& key : chosen.value()) {
    libscols_line* line = scols_table_new_line(table.get(), nullptr);
    if (!line) {
      return out_of_memory();
    }
    scols_line_set_data(line, 0, key.c_str());
    scols_line_set_data(line, 1, cell_text(record.find(key)).c_str());
  }
  scols_print_table(table.get());
  return {};
}

}  // namespace vlunfs::tools
