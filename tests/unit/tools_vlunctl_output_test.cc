// vlunctl's output (tools/vlunctl_output.h): JSON of records, and lsblk-style tables whose raw
// form keeps every name on one row.
#include "tools/vlunctl_output.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace vlunfs::tools {
namespace {

fs::Record record_of(const std::string& line) {
  auto records = fs::parse_records(line);
  EXPECT_TRUE(records) << records.error().message;
  return records && !records.value().empty() ? records.value().front() : fs::Record{};
}

std::string printed(const std::vector<const fs::Record*>& rows, const std::vector<std::string>& columns,
                    const OutputOptions& options, bool* ok = nullptr) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buffer, &size);
  const Error refused = print_table(out, rows, columns, options);
  if (ok) *ok = !refused;
  std::fclose(out);
  std::string text(buffer, size);
  free(buffer);
  return text;
}

TEST(JsonTest, StringsAreQuoted) {
  EXPECT_EQ(json_quote("a\"b\\c\n\t\x01"), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
  EXPECT_EQ(json_quote("é"), "\"é\"");
}

TEST(JsonTest, DottedKeysNestAndNumbersStayNumbers) {
  const fs::Record r = record_of("vlun\tpath=/a\\tb\tino#3\tlast_lba#\tread.requests#5\tread.latency_p50_ns#100\twrite.requests#1\n");
  EXPECT_EQ(record_to_json(r),
            "{\"path\": \"/a\\tb\", \"ino\": 3, \"last_lba\": null, \"read\": {\"requests\": 5, \"latency_p50_ns\": 100}, "
            "\"write\": {\"requests\": 1}}");
}

TEST(JsonTest, TheDocumentHasTheSchemaAndListsTheVluns) {
  auto records = fs::parse_records("pool\ttotal_chunks#9\nvlun\tino#1\nvlun\tino#2\n");
  ASSERT_TRUE(records);
  EXPECT_EQ(document_to_json("stats", records.value(), {"vlun"}),
            "{\"schema\": 1, \"command\": \"stats\",\n \"pool\": {\"total_chunks\": 9},\n \"vluns\": [\n  {\"ino\": 1},\n"
            "  {\"ino\": 2}\n ]\n}\n");
  EXPECT_EQ(document_to_json("ls", {}, {"vlun"}), "{\"schema\": 1, \"command\": \"ls\",\n \"vluns\": []\n}\n");
}

TEST(TableTest, RawRowsEscapeTabsNewlinesAndSpaces) {
  const fs::Record r = record_of("vlun\tpath=/a\\tb\\nc d\tino#7\n");
  OutputOptions raw;
  raw.raw = true;
  raw.no_headings = true;
  EXPECT_EQ(printed({&r}, {"path", "ino"}, raw), "/a\\x09b\\x0ac\\x20d 7\n");
}

TEST(TableTest, ColumnsAreChosenByNameCaseInsensitively) {
  const fs::Record r = record_of("vlun\tpath=/a\tino#7\tread.requests#4\tcreated#\n");
  OutputOptions o;
  o.raw = true;
  o.columns = "read_requests,PATH";
  EXPECT_EQ(printed({&r}, {"path", "ino"}, o), "READ_REQUESTS PATH\n4 /a\n");
  o.columns = "+created";
  o.no_headings = true;
  EXPECT_EQ(printed({&r}, {"path", "ino"}, o), "/a 7 -\n");  // null is "-"
  o.columns = "nosuch";
  bool ok = true;
  printed({&r}, {"path"}, o, &ok);
  EXPECT_FALSE(ok);
  // The refusal names the column and the ones there are, as vlunctl prints it.
  std::FILE* sink = std::fopen("/dev/null", "w");
  ASSERT_NE(sink, nullptr);
  const Error refused = print_table(sink, {&r}, {"path"}, o);
  std::fclose(sink);
  EXPECT_EQ(refused.value(), EINVAL);
  EXPECT_EQ(refused.message.rfind("unknown column 'nosuch' (columns: PATH,", 0), 0u) << refused.message;
}

}  // namespace
}  // namespace vlunfs::tools
