// A randomized model test of the vLUN layer: thousands of random ioctls and block I/Os, each
// checked against a plain in-memory model of what the spec says must happen (sizes in chunks,
// contents per vLUN, chunks shared by clones, the exact free chunk count).
#include "vlun_rig.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>

namespace vlunfs::vlun::testing {
namespace {

constexpr uint64_t kLunChunks = 64;
constexpr uint64_t kChunk = 16;
constexpr unsigned kMaxHandles = 12;

// A physical chunk as the model sees it: an identity shared by every vLUN that maps it, and the
// blocks written into it.
struct ModelChunk {
  std::map<uint64_t, uint64_t> blocks;  // offset in chunk -> seed of the pattern written
  int owners = 0;
};

struct ModelVlun {
  std::vector<std::shared_ptr<ModelChunk>> chunks;
  bool write_same = false;
};

struct Model {
  // (context 0 = parent, 1 = child) -> handle -> vLUN
  std::map<uint64_t, ModelVlun> vluns[2];
  uint64_t used_chunks = 0;
  // True while every chunk ever given back was zeroed (its last owner had the write-same wish),
  // so a block never written since its chunk was allocated must read as zeros.
  bool freed_chunks_are_zero = true;

  uint64_t free() const { return kLunChunks - used_chunks; }
  void drop(const std::shared_ptr<ModelChunk>& chunk, bool write_same) {
    if (--chunk->owners == 0) {
      used_chunks--;
      if (!write_same) freed_chunks_are_zero = false;
    }
  }
  void resize(ModelVlun& v, uint64_t target) {
    while (v.chunks.size() > target) {
      drop(v.chunks.back(), v.write_same);
      v.chunks.pop_back();
    }
    while (v.chunks.size() < target && free() > 0) {
      auto c = std::make_shared<ModelChunk>();
      c->owners = 1;
      used_chunks++;
      v.chunks.push_back(c);
    }
  }
};

class ModelRun {
 public:
  // With `write_same_only`, every vLUN asks for write-same and nothing is cloned (a clone never
  // inherits the wish), so every chunk ever freed is zeroed and never-written blocks read zeros.
  ModelRun(uint64_t seed, bool write_same_only)
      : rig_(RigOptions{.chunks = kLunChunks, .driver = {.chunk_shift = 4, .max_rht_per_context = kMaxHandles}}),
        rng_(seed),
        always_write_same_(write_same_only),
        clones_(!write_same_only) {
    cookie_[0] = rig_.attach_ok(kParent);
    cookie_[1] = rig_.attach_ok(kChild);
  }

  void run(unsigned steps) {
    for (step_ = 0; step_ < steps && !::testing::Test::HasFatalFailure(); ++step_) {
      switch (rng_() % 20) {
        case 0: case 1: create(); break;
        case 2: case 3: case 4: resize(); break;
        case 5: case 6: case 7: case 8: case 9: write(); break;
        case 10: case 11: case 12: case 13: case 14: read(); break;
        case 15: case 16: release(); break;
        case 17: clone(); break;
        default: read_beyond_size(); break;
      }
      check_free();
    }
  }

 private:
  const Caller& who(int ctx) const { return ctx == 0 ? kParent : kChild; }
  std::string where() const { return "step " + std::to_string(step_); }

  // A random existing vLUN, or false if there is none.
  bool pick(int* ctx, uint64_t* handle) {
    size_t n = model_.vluns[0].size() + model_.vluns[1].size();
    if (n == 0) return false;
    size_t i = rng_() % n;
    *ctx = i < model_.vluns[0].size() ? 0 : 1;
    if (*ctx == 1) i -= model_.vluns[0].size();
    auto it = model_.vluns[*ctx].begin();
    std::advance(it, static_cast<long>(i));
    *handle = it->first;
    return true;
  }

  void create() {
    int ctx = static_cast<int>(rng_() % 2);
    uint64_t chunks = rng_() % 9;
    bool write_same = always_write_same_ || rng_() % 2 == 0;
    uint64_t handle = 0, last = 0;
    std::error_code ec = rig_.create(cookie_[ctx], chunks, &handle, &last, who(ctx),
                                     write_same ? DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME : 0);
    if (model_.vluns[ctx].size() == kMaxHandles) {
      EXPECT_EQ(ec, errno_error(EMFILE)) << where();
      return;
    }
    if (chunks > 0 && model_.free() == 0) {
      EXPECT_EQ(ec, errno_error(ENOSPC)) << where();
      return;
    }
    ASSERT_FALSE(ec) << where() << ": " << ec.message();
    ASSERT_EQ(model_.vluns[ctx].count(handle), 0u) << where();
    // The lowest free handle number.
    uint64_t expected_handle = 0;
    while (model_.vluns[ctx].count(expected_handle)) ++expected_handle;
    EXPECT_EQ(handle, expected_handle) << where();
    ModelVlun& v = model_.vluns[ctx][handle];
    v.write_same = write_same;
    model_.resize(v, chunks);
    EXPECT_EQ(last, virtual_last_lba(v.chunks.size(), 4096, 4)) << where();
  }

  void resize() {
    int ctx;
    uint64_t handle;
    if (!pick(&ctx, &handle)) return;
    ModelVlun& v = model_.vluns[ctx][handle];
    uint64_t target = rng_() % 12;
    uint64_t last = 0;
    std::error_code ec = rig_.resize(cookie_[ctx], handle, target, &last, who(ctx));
    if (target > v.chunks.size() && model_.free() == 0) {
      EXPECT_EQ(ec, errno_error(ENOSPC)) << where();
      return;
    }
    ASSERT_FALSE(ec) << where() << ": " << ec.message();
    model_.resize(v, target);
    EXPECT_EQ(last, virtual_last_lba(v.chunks.size(), 4096, 4)) << where();
  }

  void write() {
    int ctx;
    uint64_t handle;
    if (!pick(&ctx, &handle)) return;
    ModelVlun& v = model_.vluns[ctx][handle];
    if (v.chunks.empty()) return;
    uint64_t vlba = rng_() % (v.chunks.size() * kChunk);
    uint64_t seed = rng_() | 1;
    ASSERT_TRUE(rig_.write_block(cookie_[ctx], handle, vlba, seed, who(ctx))) << where();
    v.chunks[vlba / kChunk]->blocks[vlba % kChunk] = seed;
  }

  void read() {
    int ctx;
    uint64_t handle;
    if (!pick(&ctx, &handle)) return;
    ModelVlun& v = model_.vluns[ctx][handle];
    if (v.chunks.empty()) return;
    uint64_t vlba = rng_() % (v.chunks.size() * kChunk);
    auto got = rig_.read_block(cookie_[ctx], handle, vlba, who(ctx));
    ASSERT_FALSE(got.empty()) << where();
    const ModelChunk& chunk = *v.chunks[vlba / kChunk];
    auto it = chunk.blocks.find(vlba % kChunk);
    if (it != chunk.blocks.end()) {
      EXPECT_EQ(got, rig_.block(it->second)) << where() << " vLBA " << vlba;
    } else if (model_.freed_chunks_are_zero) {
      EXPECT_EQ(got, rig_.zeros()) << where() << " vLBA " << vlba << " (never written)";
    }
  }

  void read_beyond_size() {
    int ctx;
    uint64_t handle;
    if (!pick(&ctx, &handle)) return;
    const ModelVlun& v = model_.vluns[ctx][handle];
    uint64_t vlba = v.chunks.size() * kChunk + rng_() % 40;
    std::vector<std::byte> buf(4096);
    EXPECT_EQ(rig_.io(cookie_[ctx], handle, false, vlba, 1, buf.data(), who(ctx)).rc.afu_rc,
              SISL_AFU_RC_LXT_OUT_OF_BOUNDS)
        << where();
  }

  void release() {
    int ctx;
    uint64_t handle;
    if (!pick(&ctx, &handle)) return;
    ASSERT_FALSE(rig_.release(cookie_[ctx], handle, who(ctx))) << where();
    ModelVlun& v = model_.vluns[ctx][handle];
    model_.resize(v, 0);
    model_.vluns[ctx].erase(handle);
  }

  // The child starts over: a fresh context, then the parent's vLUNs cloned into it.
  void clone() {
    if (!clones_) return;
    ASSERT_FALSE(rig_.detach(cookie_[1], kChild)) << where();
    for (auto& [handle, v] : model_.vluns[1]) model_.resize(v, 0);
    model_.vluns[1].clear();
    cookie_[1] = rig_.attach_ok(kChild);
    if (model_.vluns[0].empty()) {
      // Nothing open anywhere: the LUN left virtual mode, and clone needs it (spec §3.10).
      EXPECT_EQ(rig_.clone(cookie_[0], cookie_[1], kChild), errno_error(EINVAL)) << where();
      return;
    }
    ASSERT_FALSE(rig_.clone(cookie_[0], cookie_[1], kChild)) << where();
    for (const auto& [handle, v] : model_.vluns[0]) {
      ModelVlun copy;
      copy.chunks = v.chunks;  // the same physical chunks
      for (auto& c : copy.chunks) c->owners++;
      copy.write_same = false;  // not copied (spec §6)
      model_.vluns[1][handle] = copy;
    }
  }

  void check_free() {
    LunInfo info = rig_.driver.lun_info(*rig_.lun);
    size_t open = model_.vluns[0].size() + model_.vluns[1].size();
    EXPECT_EQ(info.users, static_cast<int>(open)) << where();
    if (open == 0) {
      EXPECT_EQ(info.total_chunks, 0u) << where();  // no user, no allocator
      EXPECT_EQ(model_.used_chunks, 0u);
      return;
    }
    ASSERT_EQ(info.free_chunks, model_.free()) << where();
  }

  Rig rig_;
  std::mt19937_64 rng_;
  bool always_write_same_;
  bool clones_;
  uint64_t cookie_[2];
  Model model_;
  unsigned step_ = 0;
};

TEST(VlunModel, RandomOperationsMatchTheModelSeed1) { ModelRun(1, false).run(4000); }
TEST(VlunModel, RandomOperationsMatchTheModelSeed2) { ModelRun(2, false).run(4000); }
TEST(VlunModel, RandomOperationsMatchTheModelSeed3) { ModelRun(3, false).run(4000); }
TEST(VlunModel, WithWriteSameEverywhereNeverWrittenBlocksReadZeroSeed4) { ModelRun(4, true).run(4000); }
TEST(VlunModel, WithWriteSameEverywhereNeverWrittenBlocksReadZeroSeed5) { ModelRun(5, true).run(4000); }

}  // namespace
}  // namespace vlunfs::vlun::testing
