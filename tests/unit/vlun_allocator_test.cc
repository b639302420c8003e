// Specifications of the per-LUN chunk allocator (spec §5.1-§5.3): the free bitmap, the clone
// counters and the word-granular elevator whose placement the driver's must match exactly.
#include "vlun/chunk_allocator.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace vlunfs::vlun {
namespace {

std::vector<uint64_t> alloc_n(ChunkAllocator& a, size_t n) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < n; ++i) {
    auto aun = a.alloc();
    if (!aun) break;
    out.push_back(*aun);
  }
  return out;
}

std::vector<uint64_t> range(uint64_t first, uint64_t end) {
  std::vector<uint64_t> out;
  for (uint64_t i = first; i < end; ++i) out.push_back(i);
  return out;
}

TEST(ChunkAllocator, AFreshAllocatorHandsOutChunksInOrder) {
  ChunkAllocator a(200);
  EXPECT_EQ(a.total(), 200u);
  EXPECT_EQ(a.space(), 200u);
  EXPECT_EQ(alloc_n(a, 130), range(0, 130));
  EXPECT_EQ(a.space(), 70u);
  EXPECT_FALSE(a.is_free(129));
  EXPECT_TRUE(a.is_free(130));
  EXPECT_EQ(a.references(5), 1u);
  EXPECT_EQ(a.references(150), 0u);
}

TEST(ChunkAllocator, ZeroChunksIsRefused) {
  EXPECT_THROW(ChunkAllocator(0), std::invalid_argument);
}

TEST(ChunkAllocator, AFreedLowerChunkInTheCursorsWordIsReusedNext) {
  ChunkAllocator a(200);
  alloc_n(a, 10);
  ASSERT_EQ(a.free(3), ChunkAllocator::FreeResult::freed);
  ASSERT_EQ(a.free(7), ChunkAllocator::FreeResult::freed);
  EXPECT_EQ(a.alloc(), 3u);  // lowest free bit of the cursor's word
  EXPECT_EQ(a.alloc(), 7u);
  EXPECT_EQ(a.alloc(), 10u);
}

TEST(ChunkAllocator, FreedChunksInLowerWordsWaitUntilTheElevatorWraps) {
  ChunkAllocator a(192);  // three full words
  alloc_n(a, 70);         // the cursor is in word 1
  ASSERT_EQ(a.free(3), ChunkAllocator::FreeResult::freed);
  ASSERT_EQ(a.free(40), ChunkAllocator::FreeResult::freed);
  EXPECT_EQ(alloc_n(a, 122), range(70, 192));  // everything above first (pitfall 12)
  EXPECT_EQ(a.alloc(), 3u);                    // then the wrap to the lower word
  EXPECT_EQ(a.alloc(), 40u);
  EXPECT_EQ(a.alloc(), std::nullopt);
}

TEST(ChunkAllocator, TakingBit63MovesTheCursorToTheNextWord) {
  {
    ChunkAllocator a(192);
    alloc_n(a, 63);  // bits 0..62: the cursor stays in word 0
    ASSERT_EQ(a.free(10), ChunkAllocator::FreeResult::freed);
    EXPECT_EQ(a.alloc(), 10u);
  }
  {
    ChunkAllocator a(192);
    alloc_n(a, 64);  // bit 63 taken: the cursor moves to word 1
    ASSERT_EQ(a.free(10), ChunkAllocator::FreeResult::freed);
    EXPECT_EQ(a.alloc(), 64u);
  }
  {
    // A word filled out of order: the cursor moves only when bit 63 itself is the one taken.
    ChunkAllocator a(192);
    alloc_n(a, 64);
    ASSERT_EQ(a.free(63), ChunkAllocator::FreeResult::freed);
    ASSERT_EQ(a.free(5), ChunkAllocator::FreeResult::freed);
    EXPECT_EQ(a.alloc(), 64u);  // cursor in word 1
    EXPECT_EQ(alloc_n(a, 127), range(65, 192));
    EXPECT_EQ(a.alloc(), 5u);   // wrap: cursor back in word 0
    EXPECT_EQ(a.alloc(), 63u);  // bit 63: the cursor moves to word 1
    ASSERT_EQ(a.free(6), ChunkAllocator::FreeResult::freed);
    ASSERT_EQ(a.free(100), ChunkAllocator::FreeResult::freed);
    EXPECT_EQ(a.alloc(), 100u);
    EXPECT_EQ(a.alloc(), 6u);
  }
}

TEST(ChunkAllocator, TheElevatorWrapsFromTheLastWordToTheFirst) {
  ChunkAllocator a(128);
  alloc_n(a, 128);  // the last bit of the last word moves the cursor past the end
  ASSERT_EQ(a.free(70), ChunkAllocator::FreeResult::freed);
  ASSERT_EQ(a.free(2), ChunkAllocator::FreeResult::freed);
  EXPECT_EQ(a.alloc(), 2u);
  EXPECT_EQ(a.alloc(), 70u);
}

TEST(ChunkAllocator, UnusedTopBitsOfTheLastWordAreNeverAllocated) {
  for (uint64_t total : {1u, 63u, 64u, 65u, 70u, 127u}) {
    ChunkAllocator a(total);
    EXPECT_EQ(alloc_n(a, 200), range(0, total)) << total;
    EXPECT_EQ(a.space(), 0u);
    EXPECT_EQ(a.alloc(), std::nullopt);
    EXPECT_FALSE(a.is_free(total));
    EXPECT_EQ(a.free(total), ChunkAllocator::FreeResult::already_free);
    EXPECT_EQ(a.space(), 0u);
    EXPECT_EQ(a.alloc(), std::nullopt);
  }
}

TEST(ChunkAllocator, ExhaustionAndFreeKeepTheCounterExact) {
  ChunkAllocator a(100);
  auto all = alloc_n(a, 100);
  EXPECT_EQ(all.size(), 100u);
  EXPECT_EQ(a.alloc(), std::nullopt);
  EXPECT_EQ(a.space(), 0u);
  for (uint64_t aun : {99u, 0u, 50u}) EXPECT_EQ(a.free(aun), ChunkAllocator::FreeResult::freed);
  EXPECT_EQ(a.space(), 3u);
  EXPECT_EQ(a.free(50), ChunkAllocator::FreeResult::already_free);  // double free: ignored
  EXPECT_EQ(a.free(1000), ChunkAllocator::FreeResult::already_free);
  EXPECT_EQ(a.space(), 3u);
  EXPECT_EQ(alloc_n(a, 10), (std::vector<uint64_t>{99, 0, 50}));
}

TEST(ChunkAllocator, CloneAddsReferencesThatFreeDropsOneByOne) {
  ChunkAllocator a(10);
  uint64_t aun = *a.alloc();
  EXPECT_FALSE(a.clone(5));  // a free chunk cannot be cloned
  EXPECT_FALSE(a.clone(99));
  ASSERT_TRUE(a.clone(aun));
  ASSERT_TRUE(a.clone(aun));
  EXPECT_EQ(a.references(aun), 3u);
  EXPECT_EQ(a.space(), 9u);
  EXPECT_EQ(a.free(aun), ChunkAllocator::FreeResult::still_shared);
  EXPECT_EQ(a.free(aun), ChunkAllocator::FreeResult::still_shared);
  EXPECT_EQ(a.references(aun), 1u);
  EXPECT_EQ(a.space(), 9u);
  EXPECT_EQ(a.free(aun), ChunkAllocator::FreeResult::freed);
  EXPECT_EQ(a.references(aun), 0u);
  EXPECT_EQ(a.space(), 10u);
}

TEST(ChunkAllocator, AChunkHasAtMost256Owners) {
  ChunkAllocator a(4);
  uint64_t aun = *a.alloc();
  for (unsigned i = 0; i < MAX_AUN_CLONE_CNT; ++i) ASSERT_TRUE(a.clone(aun)) << i;
  EXPECT_FALSE(a.clone(aun));
  EXPECT_EQ(a.references(aun), 256u);
  EXPECT_FALSE(a.reserve(aun));
  for (unsigned i = 0; i < MAX_AUN_CLONE_CNT; ++i) {
    ASSERT_EQ(a.free(aun), ChunkAllocator::FreeResult::still_shared) << i;
  }
  EXPECT_EQ(a.free(aun), ChunkAllocator::FreeResult::freed);
  EXPECT_EQ(a.space(), 4u);
}

TEST(ChunkAllocator, ReserveOwnsAFreeChunkOrAddsAReference) {
  ChunkAllocator a(100);
  EXPECT_TRUE(a.reserve(5));
  EXPECT_EQ(a.space(), 99u);
  EXPECT_EQ(a.references(5), 1u);
  EXPECT_TRUE(a.reserve(5));  // named twice: shared
  EXPECT_EQ(a.references(5), 2u);
  EXPECT_EQ(a.space(), 99u);
  EXPECT_FALSE(a.reserve(100));
  EXPECT_TRUE(a.reserve(0));
  EXPECT_EQ(alloc_n(a, 5), (std::vector<uint64_t>{1, 2, 3, 4, 6}));  // reserved chunks are skipped
  EXPECT_EQ(a.free(5), ChunkAllocator::FreeResult::still_shared);
  EXPECT_EQ(a.free(5), ChunkAllocator::FreeResult::freed);
}

}  // namespace
}  // namespace vlunfs::vlun
