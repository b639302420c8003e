// The records of the control protocol's answers (fs/report_records.h): escaping, parsing, and
// the chunk-range notation of `vlunctl ls`.
#include "fs/report_records.h"

#include <gtest/gtest.h>

namespace vlunfs::fs {
namespace {

TEST(RecordEscapeTest, NoByteCanBreakALineOrAField) {
  const std::string name = std::string("a\tb\nc\\d\x01") + '\x7f' + "é";
  const std::string escaped = escape_record_text(name);
  EXPECT_EQ(escaped, "a\\tb\\nc\\\\d\\x01\\x7fé");
  EXPECT_EQ(escaped.find('\t'), std::string::npos);
  EXPECT_EQ(escaped.find('\n'), std::string::npos);
  EXPECT_EQ(unescape_record_text(escaped), name);
}

TEST(RecordEscapeTest, MalformedEscapesAreRefused) {
  EXPECT_FALSE(unescape_record_text("trailing\\"));
  EXPECT_FALSE(unescape_record_text("\\q"));
  EXPECT_FALSE(unescape_record_text("\\x4"));
  EXPECT_FALSE(unescape_record_text("\\xzz"));
  EXPECT_EQ(unescape_record_text("\\x41\\x0a"), "A\n");
}

TEST(RecordParseTest, WhatTheWriterWritesParsesBack) {
  RecordWriter w;
  w.begin("vlun").text("path", "/x\ty\nz").number("ino", 12).null("last_lba").number("read.requests", 3);
  w.begin("pool").number("total_chunks", 1u << 20);
  auto parsed = parse_records(w.str());
  ASSERT_TRUE(parsed) << parsed.error().message;
  const std::vector<Record>& records = parsed.value();
  ASSERT_EQ(records.size(), 2u);
  const Record& v = records[0];
  EXPECT_EQ(v.type, "vlun");
  ASSERT_TRUE(v.find("path"));
  EXPECT_EQ(v.find("path")->value, "/x\ty\nz");
  EXPECT_FALSE(v.find("path")->number);
  EXPECT_TRUE(v.find("ino")->number);
  EXPECT_EQ(v.find("ino")->value, "12");
  EXPECT_TRUE(v.find("last_lba")->null);
  EXPECT_EQ(v.find("read.requests")->value, "3");
  EXPECT_EQ(records[1].find("total_chunks")->value, "1048576");
}

TEST(RecordParseTest, TextThatIsNotRecordsIsRefused) {
  auto unterminated = parse_records("vlun\tpath=/a");
  ASSERT_FALSE(unterminated);
  EXPECT_EQ(unterminated.error().value(), EPROTO);
  EXPECT_EQ(unterminated.error().message, "the last record has no end of line");
  EXPECT_FALSE(parse_records("# path\tino\n"));  // version 1's text
  auto not_a_number = parse_records("vlun\tino#12x\n");
  ASSERT_FALSE(not_a_number);
  EXPECT_EQ(not_a_number.error().message, "record 1: ino is not a number");
  EXPECT_FALSE(parse_records("vlun\tnovalue\n"));
  EXPECT_FALSE(parse_records("vlun\tBad=1\n"));
  EXPECT_FALSE(parse_records("vlun\tpath=\\q\n"));
  auto empty = parse_records("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value().empty());
}

TEST(ChunkRangesTest, RunsOfConsecutiveChunksAreOneRange) {
  std::vector<uint64_t> thick;
  for (uint64_t c = 77; c < 477; ++c) thick.push_back(c);
  EXPECT_EQ(chunk_ranges(thick), "77x400");
  EXPECT_EQ(chunk_ranges({}), "");
  EXPECT_EQ(chunk_ranges({5}), "5");
  EXPECT_EQ(chunk_ranges({3, 4, 9, 10, 11, 2, 7}), "3x2,9x3,2,7");
  // A thin vLUN's unwritten chunks all map the zero chunk: the same number, not a run.
  EXPECT_EQ(chunk_ranges({1023, 1023, 1023}), "1023,1023,1023");
  EXPECT_EQ(parse_chunk_ranges("77x400"), thick);
}

TEST(ChunkRangesTest, RangesParseBackToTheList) {
  const std::vector<uint64_t> chunks = {0, 1, 2, 8, 6, 7, 7};
  EXPECT_EQ(parse_chunk_ranges(chunk_ranges(chunks)), chunks);
  EXPECT_EQ(parse_chunk_ranges(""), std::vector<uint64_t>{});
  EXPECT_FALSE(parse_chunk_ranges("5x"));
  EXPECT_FALSE(parse_chunk_ranges("5x1"));  // a run is written only for two or more
  EXPECT_FALSE(parse_chunk_ranges("1,"));
  EXPECT_FALSE(parse_chunk_ranges("a"));
}

}  // namespace
}  // namespace vlunfs::fs
