// Kernel vLUNs through the CAPI backend under the simulated kernel (spec §3.3-§3.6, §3.10, §6):
// USER_VIRTUAL / VLUN_RESIZE / RELEASE, VLUN_CLONE after fork, nothing kept after the context.
#include "afu/capi/kernel_vluns.h"

#include "capi_rig.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace vlunfs::afu::capi {
namespace {

using test_rig::Blocks;
using test_rig::CapiRig;

constexpr uint64_t kChunk = uint64_t{256} << 20;  // 2^16 blocks of 4 KiB
constexpr uint64_t kLun = 8 * kChunk;

std::unique_ptr<KernelVluns> open_vluns(CapiRig& rig) {
  std::string why;
  auto v = KernelVluns::open(*rig.kernel, rig.device, {}, &why);
  EXPECT_TRUE(v) << why;
  return v ? std::move(v).value() : nullptr;
}

// A context with one vLUN of `bytes`; the handle in *handle.
std::unique_ptr<KernelVluns> with_vlun(CapiRig& rig, uint64_t bytes, uint64_t* handle) {
  auto vluns = open_vluns(rig);
  if (!vluns) return nullptr;
  auto h = vluns->create(bytes);
  EXPECT_TRUE(h);
  if (!h) return nullptr;
  *handle = h.value();
  return vluns;
}

TEST(CapiKernelVluns, CreateResizeMoveDataRelease) {
  CapiRig rig({}, kLun);
  auto vluns = open_vluns(rig);
  ASSERT_TRUE(vluns);
  auto h = vluns->create(0);
  ASSERT_TRUE(h);
  auto size = vluns->resize(h.value(), 300 << 20);
  ASSERT_TRUE(size);
  EXPECT_EQ(size.value(), 2 * kChunk);  // whole chunks
  Blocks out(2, 0x61), in(2);
  ASSERT_FALSE(vluns->write(h.value(), 70000, 2, out.data()));  // in the second chunk
  ASSERT_FALSE(vluns->read(h.value(), 70000, 2, in.data()));
  EXPECT_EQ(in.at(4096), 0x61);
  ASSERT_FALSE(vluns->release(h.value()));
  EXPECT_EQ(vluns->handles(), 0u);
}

TEST(CapiKernelVluns, IoBeyondTheVlunIsRefusedByTheAfu) {
  CapiRig rig({}, kLun);
  uint64_t h = 0;
  auto vluns = with_vlun(rig, kChunk, &h);
  ASSERT_TRUE(vluns);
  Blocks b(1);
  EXPECT_EQ(vluns->read(h, 65536, 1, b.data()).value(), EINVAL);  // LXT_OUT_OF_BOUNDS
  EXPECT_FALSE(vluns->read(h, 65535, 1, b.data()));
}

TEST(CapiKernelVluns, AGrowBeyondTheFlashIsTruncated) {
  CapiRig rig({}, kLun);
  auto vluns = open_vluns(rig);
  ASSERT_TRUE(vluns);
  auto h = vluns->create(0);
  ASSERT_TRUE(h);
  auto size = vluns->resize(h.value(), 100 * kChunk);
  ASSERT_TRUE(size);
  EXPECT_GT(size.value(), 0u);
  EXPECT_LE(size.value(), kLun);
  EXPECT_EQ(vluns->resize(h.value(), 101 * kChunk).error().value(), ENOSPC);  // nothing free at all now
}

TEST(CapiKernelVluns, NothingIsKeptAfterTheContextGoes) {
  CapiRig rig({}, kLun);
  uint64_t h = 0;
  {
    auto vluns = with_vlun(rig, kChunk, &h);
    ASSERT_TRUE(vluns);
    Blocks out(1, 0x7E);
    ASSERT_FALSE(vluns->write(h, 10, 1, out.data()));
  }
  EXPECT_EQ(rig.kernel->counters().open_contexts, 0u);
  auto vluns = with_vlun(rig, kChunk, &h);
  ASSERT_TRUE(vluns);
  Blocks in(1, 0xEE);
  ASSERT_FALSE(vluns->read(h, 10, 1, in.data()));
  EXPECT_EQ(in.at(0), 0);  // the chunk was zeroed when it was given back (NEED_WRITE_SAME)
}

TEST(CapiKernelVluns, ChildClonesTheParentsVlunsAfterFork) {
  CapiRig rig({}, kLun);
  uint64_t h = 0;
  auto vluns = with_vlun(rig, kChunk, &h);
  ASSERT_TRUE(vluns);
  Blocks out(1, 0x3C);
  ASSERT_FALSE(vluns->write(h, 5, 1, out.data()));
  const uint64_t parent_attaches = rig.kernel->counters().attaches;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Before the clone the parent's context is not ours; after it, the same handle reads the data.
    std::string why;
    if (vluns->clone_in_child(&why)) _exit(1);
    if (rig.kernel->counters().attaches != parent_attaches + 1) _exit(2);
    Blocks in(1);
    if (vluns->read(h, 5, 1, in.data())) _exit(3);
    if (in.at(0) != 0x3C) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  Blocks in(1);
  ASSERT_FALSE(vluns->read(h, 5, 1, in.data()));  // the parent's context is untouched
  EXPECT_EQ(in.at(0), 0x3C);
}

// A daemon forks before it has made any vLUN (vlunfs -o kernel_vluns): the LUN is not yet in
// virtual mode, where VLUN_CLONE answers EINVAL (spec §3.10), and there is nothing to clone.
TEST(CapiKernelVluns, ChildOfAContextWithoutVlunsAttachesItsOwn) {
  CapiRig rig({}, kLun);
  auto vluns = open_vluns(rig);
  ASSERT_TRUE(vluns);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string why;
    if (vluns->clone_in_child(&why)) _exit(1);
    auto h = vluns->create(kChunk);
    if (!h) _exit(2);
    Blocks out(1, 0x5A), in(1);
    if (vluns->write(h.value(), 7, 1, out.data()) || vluns->read(h.value(), 7, 1, in.data())) _exit(3);
    _exit(in.at(0) == 0x5A ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CapiKernelVluns, CloneWithoutAForkIsRefused) {
  CapiRig rig({}, kLun);
  auto vluns = open_vluns(rig);
  ASSERT_TRUE(vluns);
  ASSERT_TRUE(vluns->create(kChunk));
  std::string why;
  // The source context must belong to the caller's parent (spec §3.10): our own is refused.
  EXPECT_EQ(vluns->clone_in_child(&why).value(), EINVAL);
  EXPECT_NE(why.find("VLUN_CLONE"), std::string::npos) << why;
}

}  // namespace
}  // namespace vlunfs::afu::capi
