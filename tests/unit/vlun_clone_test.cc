// Specifications of DK_CXLFLASH_VLUN_CLONE (spec §3.10, §6): a child process's context gets the
// parent's vLUNs under the same handle numbers, sharing every physical chunk, with the documented
// deviation of pitfall 17.
#include "vlun_rig.h"
#include "vlun/chunk_allocator.h"

#include <gtest/gtest.h>

namespace vlunfs::vlun::testing {
namespace {

std::error_code einval() { return errno_error(EINVAL); }

// The parent's context and its child's, ready to clone.
struct Family {
  explicit Family(Rig& r, uint64_t child_flags = O_RDWR, uint64_t parent_flags = O_RDWR)
      : rig(r), parent(r.attach_ok(kParent, parent_flags)), child(r.attach_ok(kChild, child_flags)) {}
  Rig& rig;
  uint64_t parent, child;
};

TEST(VlunClone, ChildGetsTheSameHandleNumbersSharingEveryChunk) {
  Rig rig;
  Family f(rig);
  uint64_t h0 = rig.create_ok(f.parent, 3);
  uint64_t h1 = rig.create_ok(f.parent, 1);
  uint64_t h2 = rig.create_ok(f.parent, 2);
  uint64_t h3 = rig.create_ok(f.parent, 0);
  ASSERT_FALSE(rig.release(f.parent, h1));  // a hole at handle 1
  const uint64_t free_before = rig.free_chunks();
  const int users_before = rig.driver.lun_info(*rig.lun).users;
  ASSERT_FALSE(rig.clone(f.parent, f.child));
  for (uint64_t h : {h0, h2}) {
    EXPECT_EQ(rig.chunks_of(f.child, h, kChild), rig.chunks_of(f.parent, h)) << "handle " << h;
    for (uint64_t aun : rig.chunks_of(f.parent, h)) EXPECT_EQ(rig.driver.chunk_references(*rig.lun, aun), 2u);
  }
  EXPECT_EQ(rig.size_chunks(f.child, h3, kChild), 0u);
  EXPECT_EQ(rig.free_chunks(), free_before);  // nothing copied, nothing allocated
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, users_before + 3);
  uint64_t last = 0;
  EXPECT_EQ(rig.resize(f.child, h1, 1, &last, kChild), einval());  // the hole is a hole there too
  // The child's next vLUN takes the free handle number.
  EXPECT_EQ(rig.create_ok(f.child, 1, kChild), h1);
}

TEST(VlunClone, AWriteThroughEitherHandleIsVisibleThroughTheOther) {
  Rig rig;
  Family f(rig);
  uint64_t h = rig.create_ok(f.parent, 2);
  ASSERT_TRUE(rig.write_block(f.parent, h, 5, 1));
  ASSERT_FALSE(rig.clone(f.parent, f.child));
  EXPECT_EQ(rig.read_block(f.child, h, 5, kChild), rig.block(1));
  ASSERT_TRUE(rig.write_block(f.child, h, 20, 2, kChild));
  EXPECT_EQ(rig.read_block(f.parent, h, 20), rig.block(2));  // no copy-on-write (pitfall 18)
  ASSERT_TRUE(rig.write_block(f.parent, h, 5, 3));
  EXPECT_EQ(rig.read_block(f.child, h, 5, kChild), rig.block(3));
}

TEST(VlunClone, PermissionsAreTheSourcesIntersectedWithTheChilds) {
  {
    Rig rig;
    Family f(rig, /*child_flags=*/O_RDONLY);
    uint64_t h = rig.create_ok(f.parent, 1);
    ASSERT_FALSE(rig.clone(f.parent, f.child));
    auto data = rig.block(1);
    EXPECT_EQ(rig.io(f.child, h, false, 0, 1, data.data(), kChild).ioasc, 0u);
    EXPECT_EQ(rig.io(f.child, h, true, 0, 1, data.data(), kChild).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
    EXPECT_EQ(rig.io(f.parent, h, true, 0, 1, data.data()).ioasc, 0u);
  }
  {
    Rig rig;
    Family f(rig, /*child_flags=*/O_RDWR, /*parent_flags=*/O_WRONLY);
    uint64_t h = rig.create_ok(f.parent, 1);
    ASSERT_FALSE(rig.clone(f.parent, f.child));
    auto data = rig.block(1);
    EXPECT_EQ(rig.io(f.child, h, true, 0, 1, data.data(), kChild).ioasc, 0u);
    EXPECT_EQ(rig.io(f.child, h, false, 0, 1, data.data(), kChild).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
  }
}

TEST(VlunClone, ResizingEitherSideAfterwardsIsIndependent) {
  Rig rig;
  Family f(rig);
  uint64_t h = rig.create_ok(f.parent, 3);
  const std::vector<uint64_t> shared = rig.chunks_of(f.parent, h);
  for (uint64_t b = 0; b < 48; b += 16) ASSERT_TRUE(rig.write_block(f.parent, h, b, b));
  ASSERT_FALSE(rig.clone(f.parent, f.child));
  // Growth allocates private chunks.
  ASSERT_FALSE(rig.resize(f.child, h, 5, nullptr, kChild));
  auto child_chunks = rig.chunks_of(f.child, h, kChild);
  EXPECT_EQ(std::vector<uint64_t>(child_chunks.begin(), child_chunks.begin() + 3), shared);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, child_chunks[3]), 1u);
  EXPECT_EQ(rig.size_chunks(f.parent, h), 3u);
  EXPECT_EQ(rig.free_chunks(), 64u - 5);
  // Shrinking drops that side's reference only.
  ASSERT_FALSE(rig.resize(f.child, h, 1, nullptr, kChild));
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, shared[0]), 2u);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, shared[1]), 1u);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, shared[2]), 1u);
  EXPECT_EQ(rig.free_chunks(), 64u - 3);
  for (uint64_t b = 0; b < 48; b += 16) EXPECT_EQ(rig.read_block(f.parent, h, b), rig.block(b));
  // Chunks come back only with their last owner.
  ASSERT_FALSE(rig.release(f.parent, h));
  EXPECT_EQ(rig.free_chunks(), 64u - 1);
  EXPECT_EQ(rig.read_block(f.child, h, 0, kChild), rig.block(0));
  ASSERT_FALSE(rig.release(f.child, h, kChild));
  EXPECT_EQ(rig.free_chunks(), 0u);  // last user gone: no allocator at all
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::none);
}

TEST(VlunClone, TheWriteSameWishIsNotCopied) {
  Rig rig;
  Family f(rig);
  uint64_t h = rig.create_ok(f.parent, 1, kParent, DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME);
  const uint64_t aun = rig.chunks_of(f.parent, h)[0];
  ASSERT_TRUE(rig.write_block(f.parent, h, 3, 7));
  ASSERT_FALSE(rig.clone(f.parent, f.child));
  ASSERT_FALSE(rig.release(f.parent, h));  // still shared: not zeroed
  EXPECT_EQ(rig.store_block(aun * 16 + 3), rig.block(7));
  ASSERT_FALSE(rig.release(f.child, h, kChild));  // last owner, without the wish: not zeroed
  EXPECT_EQ(rig.store_block(aun * 16 + 3), rig.block(7));
}

TEST(VlunClone, ASharedChunkIsZeroedOnlyWhenItsLastOwnerWithTheWishFreesIt) {
  Rig rig;
  Family f(rig);
  uint64_t h = rig.create_ok(f.parent, 2, kParent, DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME);
  const std::vector<uint64_t> auns = rig.chunks_of(f.parent, h);
  ASSERT_TRUE(rig.write_block(f.parent, h, 17, 7));
  ASSERT_FALSE(rig.clone(f.parent, f.child));
  ASSERT_FALSE(rig.resize(f.parent, h, 1));  // pitfall 9 deviation: the child still uses it
  EXPECT_EQ(rig.read_block(f.child, h, 17, kChild), rig.block(7));
  ASSERT_FALSE(rig.resize(f.parent, h, 2));  // a fresh chunk for the parent
  ASSERT_FALSE(rig.release(f.child, h, kChild));
  EXPECT_EQ(rig.store_block(auns[1] * 16 + 1), rig.block(7));  // freed by the child: untouched
  ASSERT_TRUE(rig.write_block(f.parent, h, 2, 8));
  ASSERT_FALSE(rig.release(f.parent, h));
  EXPECT_EQ(rig.store_block(auns[0] * 16 + 2), rig.zeros());  // freed by the parent: zeroed
}

TEST(VlunClone, SourceWithoutHandlesOnlyAddsItsLunsToTheChild) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  Family f(rig);
  ASSERT_FALSE(rig.reuse(f.parent, second));
  uint64_t other = rig.attach_ok();
  rig.create_ok(other, 1);  // puts the LUN in virtual mode
  ASSERT_FALSE(rig.clone(f.parent, f.child));
  uint64_t h = 0;
  ASSERT_FALSE(rig.create(f.child, 1, &h, nullptr, kChild, 0, &second));  // attached by the clone
  // The added attachment holds its own context reference (pitfall 17 fixed): detaching the
  // first LUN leaves the context alive for the second.
  ASSERT_FALSE(rig.detach(f.child, kChild));
  EXPECT_TRUE(rig.write_block(f.child, h, 0, 1, kChild));
  ASSERT_FALSE(rig.detach(f.child, kChild, &second));
  EXPECT_EQ(rig.driver.mmio(f.child, kChild), nullptr);
  EXPECT_EQ(rig.driver.lun_info(second).users, 0);
}

TEST(VlunClone, ArgumentErrorsAreEinvalAndChangeNothing) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  Family f(rig);
  EXPECT_EQ(rig.clone(f.parent, f.child), einval());  // the LUN is not in virtual mode yet
  uint64_t h = rig.create_ok(f.parent, 2);
  const uint64_t aun = rig.chunks_of(f.parent, h)[0];
  uint64_t unattached = rig.attach_ok(kChild, O_RDWR, &second);
  uint64_t busy = rig.attach_ok(kChild);
  rig.create_ok(busy, 0, kChild);
  rig.create_ok(unattached, 1, kChild, 0, &second);  // the other LUN in virtual mode too
  uint64_t stranger_child = rig.attach_ok(Caller{201, 100});
  EXPECT_EQ(rig.clone(f.child, f.child), einval());                // the same cookie twice
  EXPECT_EQ(rig.clone(f.parent, f.parent), einval());
  EXPECT_EQ(rig.clone(f.parent, f.child, Caller{200, 999}), einval());  // source not the parent's
  EXPECT_EQ(rig.clone(f.parent, f.child, kParent), einval());     // the parent cannot clone to its child
  EXPECT_EQ(rig.clone(f.parent, stranger_child), einval());       // destination not the caller's
  EXPECT_EQ(rig.clone(f.parent, busy), einval());                 // destination has a handle open
  EXPECT_EQ(rig.clone(f.parent, unattached), einval());           // destination not on this LUN
  EXPECT_EQ(rig.clone(f.parent + (uint64_t{1} << 32), f.child), einval());  // stale source
  EXPECT_EQ(rig.clone(f.parent, f.child, kChild, &second), einval());      // source not on that LUN
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, aun), 1u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 2);
  uint64_t last = 0;
  EXPECT_EQ(rig.resize(f.child, h, 1, &last, kChild), einval());
  EXPECT_FALSE(rig.clone(f.parent, f.child));
}

// Pitfall 17, documented deviation: a source holding a direct (format-1) handle is refused.
TEST(VlunClone, SourceWithADirectHandleIsRefused) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  Family f(rig);
  ASSERT_FALSE(rig.reuse(f.parent, second));
  ASSERT_FALSE(rig.reuse(f.child, second, kChild));
  uint64_t v = rig.create_ok(f.parent, 1);
  uint64_t d = 0;
  ASSERT_FALSE(rig.direct(f.parent, &d, kParent, &second));
  EXPECT_EQ(rig.clone(f.parent, f.child), einval());
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  EXPECT_EQ(rig.driver.lun_info(second).users, 1);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, rig.chunks_of(f.parent, v)[0]), 1u);
  ASSERT_FALSE(rig.release(f.parent, d, kParent, &second));
  EXPECT_FALSE(rig.clone(f.parent, f.child));
}

TEST(VlunClone, SourceWithVlunsOnAnotherLunIsRefused) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  Family f(rig);
  ASSERT_FALSE(rig.reuse(f.parent, second));
  ASSERT_FALSE(rig.reuse(f.child, second, kChild));
  rig.create_ok(f.parent, 1);
  uint64_t other = rig.create_ok(f.parent, 1, kParent, 0, &second);
  EXPECT_EQ(rig.clone(f.parent, f.child), einval());
  EXPECT_EQ(rig.clone(f.parent, f.child, kChild, &second), einval());
  ASSERT_FALSE(rig.release(f.parent, other, kParent, &second));
  EXPECT_FALSE(rig.clone(f.parent, f.child));
}

TEST(VlunClone, SyncFailureIsEagainWithEverythingUndone) {
  Rig rig;
  Family f(rig);
  uint64_t h0 = rig.create_ok(f.parent, 2);
  rig.create_ok(f.parent, 1);
  rig.afu.inject_sync_failures(1);
  EXPECT_EQ(rig.clone(f.parent, f.child), errno_error(EAGAIN));
  for (uint64_t aun : rig.chunks_of(f.parent, h0)) EXPECT_EQ(rig.driver.chunk_references(*rig.lun, aun), 1u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 2);
  EXPECT_EQ(rig.free_chunks(), 61u);
  uint64_t last = 0;
  EXPECT_EQ(rig.resize(f.child, h0, 1, &last, kChild), einval());
  EXPECT_FALSE(rig.clone(f.parent, f.child));  // the destination is still pristine
}

TEST(VlunClone, TheReferenceLimitIsEioWithEverythingUndone) {
  Rig rig(RigOptions{.driver = {.chunk_shift = 4, .max_rht_per_context = 4}});
  uint64_t parent = rig.attach_ok();
  uint64_t h0 = rig.create_ok(parent, 1);
  uint64_t h1 = rig.create_ok(parent, 1);
  const uint64_t a = rig.chunks_of(parent, h0)[0], b = rig.chunks_of(parent, h1)[0];
  std::vector<uint64_t> children;
  for (pid_t pid = 1000; children.size() < MAX_AUN_CLONE_CNT; ++pid) {
    Caller child{pid, kParent.tgid};
    children.push_back(rig.attach_ok(child));
    ASSERT_FALSE(rig.clone(parent, children.back(), child)) << "clone " << children.size();
  }
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, a), 256u);  // 1 owner + 255 extra references
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, b), 256u);
  // One child lets go of chunk a: a could take one more reference, b cannot.
  ASSERT_FALSE(rig.release(children[0], h0, Caller{1000, kParent.tgid}));
  ASSERT_EQ(rig.driver.chunk_references(*rig.lun, a), 255u);
  const int users = rig.driver.lun_info(*rig.lun).users;
  const uint64_t free_chunks = rig.free_chunks();
  Caller last_child{5000, kParent.tgid};
  uint64_t dst = rig.attach_ok(last_child);
  EXPECT_EQ(rig.clone(parent, dst, last_child), errno_error(EIO));
  // Handle 0 had been cloned before handle 1 failed: it was released again.
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, a), 255u);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, b), 256u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, users);
  EXPECT_EQ(rig.free_chunks(), free_chunks);
  uint64_t last = 0;
  EXPECT_EQ(rig.resize(dst, h0, 1, &last, last_child), einval());
  EXPECT_EQ(rig.resize(dst, h1, 1, &last, last_child), einval());
  // The parent keeps working, and the destination can still be used for something else.
  EXPECT_TRUE(rig.write_block(parent, h1, 0, 1));
  EXPECT_EQ(rig.create_ok(dst, 1, last_child), 0u);
}

}  // namespace
}  // namespace vlunfs::vlun::testing
