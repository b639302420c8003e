// The LXT array of a virtual RHT entry (src/vlun/lxt_array.h): capacity in whole groups of
// LXT_GROUP_SIZE (spec §2, §5.5), and the publication order of spec §4.4 seen by a reader that
// walks the array while it grows and shrinks, as the AFU does.
#include "test_iterations.h"
#include "vlun/lxt_array.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace vlunfs::vlun {
namespace {

using namespace vlunfs::sisl;

// The entry written at index i: never 0, and different at every index, so a reader can tell an
// entry of this array from a cleared slot or memory beyond the array.
uint64_t entry_for(uint64_t i) { return make_lxt_entry(i + 1, 7, LXT_PERM_READ | LXT_PERM_WRITE, 0x3); }

void grow_to(LxtArray& lxt, sisl_rht_entry& rhte, uint64_t count) {
  auto grown = lxt.grow(rhte, count, entry_for);
  ASSERT_TRUE(grown) << grown.error().message();
}

std::vector<uint64_t> expected_entries(uint64_t first, uint64_t end) {
  std::vector<uint64_t> v;
  for (uint64_t i = first; i < end; ++i) v.push_back(entry_for(i));
  return v;
}

std::vector<uint64_t> as_vector(std::span<const uint64_t> s) { return {s.begin(), s.end()}; }

TEST(VlunLxtArray, CapacityIsWholeGroupsOfEight) {
  EXPECT_EQ(LxtArray::capacity_for(0), 0u);
  EXPECT_EQ(LxtArray::capacity_for(1), 8u);
  EXPECT_EQ(LxtArray::capacity_for(8), 8u);
  EXPECT_EQ(LxtArray::capacity_for(9), 16u);
  EXPECT_EQ(LxtArray::capacity_for(17), 24u);
  LxtArray lxt;
  EXPECT_EQ(lxt.capacity(), 0u);
  EXPECT_EQ(lxt.data(), nullptr);
}

TEST(VlunLxtArray, AGrowMovesToANewArrayOnlyWhenItNeedsAnotherGroup) {
  LxtArray lxt;
  sisl_rht_entry rhte{};
  auto first = lxt.grow(rhte, 1, entry_for);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value(), LxtArray::Growth::first_array);
  EXPECT_EQ(lxt.replaced_arrays(), 0u);
  const uint64_t* one_group = lxt.data();
  ASSERT_NE(one_group, nullptr);

  auto within = lxt.grow(rhte, 8, entry_for);
  ASSERT_TRUE(within);
  EXPECT_EQ(within.value(), LxtArray::Growth::in_place);
  EXPECT_EQ(lxt.data(), one_group);
  EXPECT_EQ(lxt.capacity(), 8u);

  auto beyond = lxt.grow(rhte, 9, entry_for);
  ASSERT_TRUE(beyond);
  EXPECT_EQ(beyond.value(), LxtArray::Growth::replaced);
  EXPECT_NE(lxt.data(), one_group);
  EXPECT_EQ(lxt.capacity(), 16u);
  EXPECT_EQ(as_vector(lxt.entries()), expected_entries(0, 9));
  for (uint64_t i = 9; i < 16; ++i) EXPECT_EQ(lxt.data()[i], 0u) << "slot " << i << " past the count";
  // The array moved away from stays until a SYNC says the AFU is done with it.
  EXPECT_EQ(lxt.replaced_arrays(), 1u);
  EXPECT_EQ(one_group[7], entry_for(7));
  lxt.release_replaced();
  EXPECT_EQ(lxt.replaced_arrays(), 0u);
}

TEST(VlunLxtArray, AGrowPublishesTheArrayAndItsCount) {
  LxtArray lxt;
  sisl_rht_entry rhte{};
  grow_to(lxt, rhte, 3);
  grow_to(lxt, rhte, 11);
  EXPECT_EQ(rhte.lxt_start, reinterpret_cast<uint64_t>(lxt.data()));
  EXPECT_EQ(rhte.lxt_cnt, 11u);
  EXPECT_EQ(lxt.size(), 11u);
}

TEST(VlunLxtArray, AShrinkPublishesTheSmallerCountAndArrayBeforeItGivesAnythingBack) {
  LxtArray lxt;
  sisl_rht_entry rhte{};
  grow_to(lxt, rhte, 20);
  bool released = false;
  ASSERT_FALSE(lxt.shrink(rhte, 5, [&](std::span<const uint64_t> removed) {
    released = true;
    EXPECT_EQ(rhte.lxt_cnt, 5u);
    EXPECT_EQ(rhte.lxt_start, reinterpret_cast<uint64_t>(lxt.data()));
    EXPECT_EQ(lxt.capacity(), 8u);
    // The removed entries are still readable where the AFU may still be reading them.
    EXPECT_EQ(as_vector(removed), expected_entries(5, 20));
  }));
  EXPECT_TRUE(released);
  EXPECT_EQ(as_vector(lxt.entries()), expected_entries(0, 5));
}

TEST(VlunLxtArray, AShrinkInPlaceClearsTheRemovedSlotsOnlyAfterTheRelease) {
  LxtArray lxt;
  sisl_rht_entry rhte{};
  grow_to(lxt, rhte, 7);
  const uint64_t* array = lxt.data();
  ASSERT_FALSE(lxt.shrink(rhte, 3, [&](std::span<const uint64_t> removed) {
    EXPECT_EQ(removed.data(), array + 3);
    EXPECT_EQ(as_vector(removed), expected_entries(3, 7));
  }));
  EXPECT_EQ(lxt.data(), array);
  EXPECT_EQ(as_vector(lxt.entries()), expected_entries(0, 3));
  for (uint64_t i = 3; i < 8; ++i) EXPECT_EQ(array[i], 0u) << "slot " << i;
  // A later grow in place starts from cleared slots.
  grow_to(lxt, rhte, 8);
  EXPECT_EQ(lxt.data(), array);
  EXPECT_EQ(as_vector(lxt.entries()), expected_entries(0, 8));
}

TEST(VlunLxtArray, ShrinkingToZeroLeavesANullArray) {
  LxtArray lxt;
  sisl_rht_entry rhte{};
  grow_to(lxt, rhte, 12);
  uint64_t removed_count = 0;
  ASSERT_FALSE(lxt.shrink(rhte, 0, [&](std::span<const uint64_t> removed) { removed_count = removed.size(); }));
  EXPECT_EQ(removed_count, 12u);
  EXPECT_EQ(lxt.data(), nullptr);
  EXPECT_EQ(lxt.size(), 0u);
  EXPECT_EQ(lxt.capacity(), 0u);
  EXPECT_EQ(rhte.lxt_cnt, 0u);
  EXPECT_EQ(rhte.lxt_start, 0u);
}

TEST(VlunLxtArray, OverwriteReplacesEntriesWithinTheCountOnly) {
  LxtArray lxt;
  sisl_rht_entry rhte{};
  grow_to(lxt, rhte, 4);
  const uint64_t a = entry_for(100), b = entry_for(101);
  ASSERT_FALSE(lxt.overwrite(1, std::vector<uint64_t>{a, b}));
  EXPECT_EQ(as_vector(lxt.entries()), (std::vector<uint64_t>{entry_for(0), a, b, entry_for(3)}));
  EXPECT_EQ(lxt.overwrite(3, std::vector<uint64_t>{a, b}), errno_error(EINVAL));
  EXPECT_EQ(lxt.overwrite(5, {}), errno_error(EINVAL));
  EXPECT_FALSE(lxt.overwrite(4, {}));
  EXPECT_EQ(lxt.data()[3], entry_for(3));  // the refused overwrite changed nothing
}

// An RHT entry whose two LXT fields call back after every store LxtArray makes to them, so that a
// test can look at each state the AFU could read between two stores.
struct WatchedRhte;
template <class T>
struct WatchedField {
  WatchedRhte* rhte;
  T value = 0;
};
struct WatchedRhte {
  WatchedField<uint64_t> lxt_start{this};
  WatchedField<uint32_t> lxt_cnt{this};
  std::function<void()> after_each_store = [] {};
};
template <class T>
void publish_field(WatchedField<T>& field, T value) {
  field.value = value;
  field.rhte->after_each_store();
}

TEST(VlunLxtArray, EveryStateBetweenTwoStoresPairsACountWithAnArrayThatHoldsIt) {
  LxtArray lxt;
  WatchedRhte rhte;
  // The arrays lxt_start may name during one grow or shrink: the one before it and the one after.
  const uint64_t* old_array = nullptr;
  uint64_t old_capacity = 0, new_capacity = 0, states = 0;
  rhte.after_each_store = [&] {
    states++;
    const auto* array = reinterpret_cast<const uint64_t*>(rhte.lxt_start.value);
    const uint64_t cnt = rhte.lxt_cnt.value;
    const uint64_t capacity = array == nullptr ? 0 : array == old_array ? old_capacity : new_capacity;
    ASSERT_LE(cnt, capacity) << "lxt_cnt " << cnt << " paired with an array of " << capacity;
    for (uint64_t i = 0; i < cnt; ++i) ASSERT_EQ(array[i], entry_for(i)) << "entry " << i << " of " << cnt;
  };
  const uint64_t targets[] = {1, 8, 9, 30, 30, 17, 16, 3, 40, 0, 5, 0};
  for (uint64_t target : targets) {
    old_array = lxt.data();
    old_capacity = lxt.capacity();
    new_capacity = LxtArray::capacity_for(target);
    if (target >= lxt.size()) {
      ASSERT_TRUE(lxt.grow(rhte, target, entry_for));
      lxt.release_replaced();
    } else {
      ASSERT_FALSE(lxt.shrink(rhte, target, [](std::span<const uint64_t>) {}));
    }
    ASSERT_EQ(rhte.lxt_cnt.value, target);
    ASSERT_EQ(rhte.lxt_start.value, reinterpret_cast<uint64_t>(lxt.data()));
  }
  EXPECT_EQ(states, 2 * std::size(targets));  // lxt_start and lxt_cnt, once each per change
}

// Walks the LXT the way the simulated AFU does (sim_afu.cc translate): lxt_cnt, lxt_start, lxt_cnt
// again, retrying when the count changed; then every entry below the count must be one this array
// holds at that index. sync() is the driver's SYNC: it returns once a walk that began after it
// was called has finished, so no walk that may have seen the old LXT is still running.
class Walker {
 public:
  explicit Walker(sisl_rht_entry& rhte) : rhte_(rhte), thread_([this] { run(); }) {}
  ~Walker() {
    stop_.store(true);
    thread_.join();
  }
  void sync() {
    const uint64_t e = epoch_.fetch_add(1, std::memory_order_acq_rel) + 1;
    while (acked_.load(std::memory_order_acquire) < e) std::this_thread::yield();
  }
  uint64_t walks() const { return walks_.load(); }
  uint64_t bad_walks() const { return bad_.load(); }

 private:
  void run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      const uint64_t e = epoch_.load(std::memory_order_acquire);
      if (!walk_is_good()) bad_.fetch_add(1);
      walks_.fetch_add(1, std::memory_order_relaxed);
      acked_.store(e, std::memory_order_release);
    }
  }
  bool walk_is_good() {
    uint32_t cnt;
    uint64_t start;
    for (;;) {
      cnt = std::atomic_ref<uint32_t>(rhte_.lxt_cnt).load(std::memory_order_acquire);
      start = std::atomic_ref<uint64_t>(rhte_.lxt_start).load(std::memory_order_acquire);
      if (std::atomic_ref<uint32_t>(rhte_.lxt_cnt).load(std::memory_order_acquire) == cnt) break;
    }
    if (cnt > 0 && start == 0) return false;
    auto* lxt = reinterpret_cast<uint64_t*>(start);
    for (uint32_t i = 0; i < cnt; ++i) {
      if (std::atomic_ref<uint64_t>(lxt[i]).load(std::memory_order_acquire) != entry_for(i)) return false;
    }
    return true;
  }

  sisl_rht_entry& rhte_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> epoch_{0}, acked_{0}, walks_{0}, bad_{0};
  std::thread thread_;
};

TEST(VlunLxtArray, AConcurrentReaderNeverSeesACountLargerThanTheArray) {
  const int iterations = testing_support::iterations_from_env("VLUNFS_LXT_ITERATIONS", 10000, 2000);
  LxtArray lxt;
  sisl_rht_entry rhte{};
  std::mt19937 rng(11);
  // Sizes 0..40 cross group boundaries both ways, in place and into new arrays.
  std::uniform_int_distribution<uint64_t> size(0, 40);
  uint64_t moved = 0, shrunk_to_zero = 0;
  {
    Walker walker(rhte);
    for (int i = 0; i < iterations; ++i) {
      const uint64_t target = size(rng);
      if (target > lxt.size()) {
        auto grown = lxt.grow(rhte, target, entry_for);
        ASSERT_TRUE(grown);
        if (grown.value() == LxtArray::Growth::replaced) moved++;
        walker.sync();
        lxt.release_replaced();
      } else {
        ASSERT_FALSE(lxt.shrink(rhte, target, [&](std::span<const uint64_t>) { walker.sync(); }));
        if (target == 0) shrunk_to_zero++;
      }
    }
    EXPECT_EQ(walker.bad_walks(), 0u) << "of " << walker.walks() << " walks";
    EXPECT_GT(walker.walks(), static_cast<uint64_t>(iterations));
  }
  EXPECT_GT(moved, 0u);
  EXPECT_GT(shrunk_to_zero, 0u);
}

}  // namespace
}  // namespace vlunfs::vlun
