// Crash at every I/O of one operation, in each of the three ways (kill, power loss, torn power
// loss), for the operations whose write order matters most: removing a file's last name (RELEASE
// zeroes its chunks), shrinking a file (VLUN_RESIZE zeroes the chunks it gives back), growing a
// file over stale bytes, and a rename that replaces a file. After each crash the file system must
// show the state before the operation or the state after it, nothing in between.
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <optional>
#include <random>

namespace vlunfs::fs {
namespace {

constexpr uint64_t kDeviceBytes = 64ull << 20;
constexpr unsigned kChunkShift = 4;
constexpr uint64_t kChunk = 4096ull << kChunkShift;

using Bytes = std::vector<std::byte>;

Bytes pattern(size_t n, unsigned seed) {
  Bytes v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng() | 1);  // never zero: a zeroed byte shows
  return v;
}

// What a file must look like after the crash; nullopt = it must not exist.
using FileImage = std::optional<Bytes>;

std::optional<Bytes> read_file(Filesystem& fs, const std::string& name) {
  auto a = fs.lookup(meta::ROOT_INO, name);
  if (!a) return std::nullopt;
  auto h = fs.open_file(a.value().st.st_ino);
  if (!h) return Bytes{};
  Bytes out(static_cast<size_t>(a.value().st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    auto n = fs.read(h.value(), done, std::span<std::byte>(out.data() + done, out.size() - done));
    if (!n || n.value() == 0) break;
    done += n.value();
  }
  fs.release_file(h.value());
  return out;
}

struct Case {
  std::function<void(Filesystem&)> setup;      // made durable before the operation
  std::function<void(Filesystem&)> operation;  // the one whose every I/O is a crash point
  // For each file name: the images it may have after the crash (before or after the operation).
  std::map<std::string, std::vector<FileImage>> allowed;
};

enum class Cut { kill, power_loss, torn };

// Runs setup, then the operation with a crash before its I/O number `crash_at` (0: none; counted
// from the operation's start). Returns the number of mutating I/Os of the operation, and checks.
uint64_t run_case(const Case& c, uint64_t crash_at, Cut cut, uint64_t seed = 0) {
  std::atomic<bool> armed{false};  // before the file system: its destructor still does I/O
  uint64_t count = 0;
  auto memory = store::make_memory_store(kDeviceBytes);
  meta::FormatOptions fo;
  fo.chunk_shift = kChunkShift;
  fo.journal_bytes = 64 << 10;
  fo.checkpoint_bytes = 256 << 10;
  EXPECT_TRUE(meta::format(*memory, fo));
  auto owned = std::make_unique<store::FaultInjectingStore>(*memory);
  store::FaultInjectingStore* fault = owned.get();
  std::string why;
  auto fs = Filesystem::open_store(std::move(owned), {}, &why).value();
  EXPECT_FALSE(fs->start(client::simulated_afu(), &why)) << why;
  c.setup(*fs);
  EXPECT_FALSE(fs->sync_all());
  armed = true;
  fault->set_failure([&, fault](store::IoKind kind, uint64_t, uint64_t) {
    if (kind == store::IoKind::read || !armed) return false;
    if (++count == crash_at) fault->freeze();
    return false;
  });
  c.operation(*fs);
  armed = false;
  if (crash_at == 0 || crash_at > count) return count;
  if (cut != Cut::kill) {
    EXPECT_FALSE(fault->lose_power(cut == Cut::torn ? 0.5 : 0.0, seed));
  }
  fs.reset();

  SCOPED_TRACE("crash before I/O " + std::to_string(crash_at) + " of the operation, cut " +
               std::to_string(static_cast<int>(cut)) + ", seed " + std::to_string(seed));
  fsck::Report r = fsck::check_device(*memory, "memory", {});
  EXPECT_EQ(r.exit_code, fsck::EXIT_CLEAN) << (r.errors().empty() ? "" : r.errors().front());
  auto again = Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(*memory), {}, &why);
  EXPECT_TRUE(again) << why;
  if (!again) return count;
  EXPECT_FALSE(again.value()->start(client::simulated_afu(), &why)) << why;
  for (const auto& [name, images] : c.allowed) {
    FileImage got = read_file(*again.value(), name);
    bool ok = std::any_of(images.begin(), images.end(), [&](const FileImage& want) { return want == got; });
    EXPECT_TRUE(ok) << name << ": " << (got ? "present, " + std::to_string(got->size()) + " bytes" : "absent")
                    << ", which is neither its state before nor after the operation";
  }
  return count;
}

void crash_at_every_io(const Case& c) {
  const uint64_t ios = run_case(c, 0, Cut::kill);
  ASSERT_GT(ios, 0u);
  for (uint64_t at = 1; at <= ios; at++) {
    run_case(c, at, Cut::kill);
    run_case(c, at, Cut::power_loss);
    // A torn cut keeps each unflushed block with probability 1/2: several seeds per point.
    for (uint64_t seed = 1; seed <= 8; seed++) run_case(c, at, Cut::torn, seed);
  }
  std::printf("[crash] %llu I/Os of the operation, each a crash point 10 ways (kill, power loss, 8 torn seeds): "
              "%llu crash points, all checks passed\n",
              static_cast<unsigned long long>(ios), static_cast<unsigned long long>(10 * ios));
}

uint64_t ino_of(Filesystem& fs, const std::string& name) { return fs.lookup(meta::ROOT_INO, name).value().st.st_ino; }

void write_file(Filesystem& fs, const std::string& name, const Bytes& data) {
  auto a = fs.create(meta::ROOT_INO, name, S_IFREG | 0644, {});
  ASSERT_TRUE(a);
  auto h = fs.open_file(a.value().st.st_ino, true).value();
  ASSERT_TRUE(fs.write(h, 0, data));
  ASSERT_FALSE(fs.fsync(h, false));
  fs.release_file(h);
}

void truncate_file(Filesystem& fs, const std::string& name, uint64_t size) {
  struct stat st {};
  st.st_size = static_cast<off_t>(size);
  ASSERT_TRUE(fs.setattr(ino_of(fs, name), st, AttrChanges{.size = true}, nullptr));
}

Bytes prefix(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)); }

TEST(CrashOrdering, UnlinkOfAClosedFileLeavesItWholeOrGone) {
  const Bytes data = pattern(3 * kChunk + 100, 1);
  Case c;
  c.setup = [&](Filesystem& fs) { write_file(fs, "f", data); };
  c.operation = [&](Filesystem& fs) { ASSERT_FALSE(fs.unlink(meta::ROOT_INO, "f")); };
  c.allowed["f"] = {data, std::nullopt};
  crash_at_every_io(c);
}

TEST(CrashOrdering, ShrinkAcrossChunksLeavesTheOldOrTheNewFile) {
  const Bytes data = pattern(4 * kChunk, 2);
  Case c;
  c.setup = [&](Filesystem& fs) { write_file(fs, "f", data); };
  c.operation = [&](Filesystem& fs) { truncate_file(fs, "f", kChunk + 10); };
  c.allowed["f"] = {data, prefix(data, kChunk + 10)};
  crash_at_every_io(c);
}

TEST(CrashOrdering, GrowOverStaleBytesNeverShowsThem) {
  // A shrink inside a chunk leaves the old bytes past the new end on the flash; a grow must show
  // zeros there, even when the power fails in the middle of it.
  const Bytes data = pattern(2 * kChunk, 3);
  Case c;
  c.setup = [&](Filesystem& fs) {
    write_file(fs, "f", data);
    truncate_file(fs, "f", 1000);
  };
  c.operation = [&](Filesystem& fs) { truncate_file(fs, "f", kChunk + 5000); };
  Bytes grown = prefix(data, 1000);
  grown.resize(kChunk + 5000);
  c.allowed["f"] = {prefix(data, 1000), grown};
  crash_at_every_io(c);
}

TEST(CrashOrdering, RenameOverAClosedFileLeavesOneOfTheTwoStates) {
  const Bytes a = pattern(2 * kChunk + 7, 4), b = pattern(kChunk + 3, 5);
  Case c;
  c.setup = [&](Filesystem& fs) {
    write_file(fs, "a", a);
    write_file(fs, "b", b);
  };
  c.operation = [&](Filesystem& fs) { ASSERT_FALSE(fs.rename(meta::ROOT_INO, "a", meta::ROOT_INO, "b", 0)); };
  c.allowed["a"] = {a, std::nullopt};
  c.allowed["b"] = {b, a};
  crash_at_every_io(c);
}

}  // namespace
}  // namespace vlunfs::fs
