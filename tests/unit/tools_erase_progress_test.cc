// mkfs's erase with a progress line (src/tools/mkfs_device.h): the erase is done in slices, all of
// it, and the line appears only for an erase that takes longer than a second.
#include "tools/mkfs_device.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace vlunfs::tools {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// Records every discard it passes on, each taking `delay`.
class SlowStore final : public store::BlockStore {
 public:
  SlowStore(uint64_t size, std::chrono::milliseconds delay) : base_(store::make_memory_store(size)), delay_(delay) {}
  std::error_code read(uint64_t offset, std::span<std::byte> out) override { return base_->read(offset, out); }
  std::error_code write(uint64_t offset, std::span<const std::byte> data) override { return base_->write(offset, data); }
  std::error_code flush() override { return base_->flush(); }
  std::error_code discard(uint64_t offset, uint64_t length) override {
    std::this_thread::sleep_for(delay_);
    discards.push_back({offset, length});
    return base_->discard(offset, length);
  }
  uint64_t size_bytes() const override { return base_->size_bytes(); }
  uint32_t block_size() const override { return base_->block_size(); }
  std::vector<std::pair<uint64_t, uint64_t>> discards;

 private:
  std::unique_ptr<store::BlockStore> base_;
  std::chrono::milliseconds delay_;
};

std::string erase_and_capture(SlowStore& slow, uint64_t offset, uint64_t length) {
  std::FILE* out = std::tmpfile();
  auto view = with_erase_progress(slow, erase_progress_line(out));
  EXPECT_FALSE(view->discard(offset, length));
  std::string text(4096, '\0');
  std::rewind(out);
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  return text;
}

TEST(EraseProgress, ErasesEverythingInSlices) {
  SlowStore slow(1024 * kMiB + 8 * kMiB, std::chrono::milliseconds(0));
  ASSERT_FALSE(slow.write(600 * kMiB, std::vector<std::byte>(4096, std::byte{1})));
  erase_and_capture(slow, 4 * kMiB, 1024 * kMiB);
  ASSERT_EQ(slow.discards.size(), 4u);
  uint64_t next = 4 * kMiB;
  for (auto [offset, length] : slow.discards) {
    EXPECT_EQ(offset, next);
    next += length;
  }
  EXPECT_EQ(next, 1028 * kMiB);
  std::vector<std::byte> back(4096);
  ASSERT_FALSE(slow.read(600 * kMiB, back));
  EXPECT_EQ(back, std::vector<std::byte>(4096)) << "the erased range reads as zeros";
}

TEST(EraseProgress, AQuickEraseShowsNoLine) {
  SlowStore slow(1024 * kMiB, std::chrono::milliseconds(0));
  EXPECT_EQ(erase_and_capture(slow, 0, 1024 * kMiB), "");
}

TEST(EraseProgress, AnEraseLongerThanASecondShowsHowFarItGot) {
  SlowStore slow(1024 * kMiB, std::chrono::milliseconds(400));  // four slices: 1.6 s
  const std::string line = erase_and_capture(slow, 0, 1024 * kMiB);
  EXPECT_EQ(line.find("erasing 256.0 MiB"), std::string::npos) << "nothing before the first second: " << line;
  EXPECT_NE(line.find("\rmkfs.vlunfs: erasing 1.0 GiB of 1.0 GiB (100%)\n"), std::string::npos) << line;
}

}  // namespace
}  // namespace vlunfs::tools
