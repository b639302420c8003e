// Specifications of the context ioctls (spec §3.0, §3.1, §3.6, §3.8, §3.9): the common header
// rules, ATTACH with its permissions and REUSE, DETACH, cookie ownership, MANAGE_LUN and
// RECOVER_AFU.
#include "vlun_rig.h"

#include <gtest/gtest.h>

namespace vlunfs::vlun::testing {
namespace {

std::error_code einval() { return errno_error(EINVAL); }

// ---- common header (spec §3.0 step 4, pitfall 6) ----

// Each bad header is refused with EINVAL before anything else, and the caller's struct is left
// exactly as it was.
template <class T, class Call>
void expect_header_checked(const T& good, Call call) {
  for (int which = 0; which < 5; ++which) {
    T bad = good;
    switch (which) {
      case 0: bad.hdr.version = 1; break;
      case 1: bad.hdr.rsvd[0] = 1; break;
      case 2: bad.hdr.rsvd[2] = 0x8000; break;
      case 3: bad.hdr.return_flags = DK_CXLFLASH_APP_CLOSE_ADAP_FD; break;
      case 4: bad.hdr.return_flags = uint64_t{1} << 63; break;
    }
    T before = bad;
    EXPECT_EQ(call(bad), einval()) << "bad header #" << which;
    EXPECT_EQ(std::memcmp(&bad, &before, sizeof bad), 0) << "struct changed, bad header #" << which;
  }
  T ok = good;
  EXPECT_FALSE(call(ok)) << "the same call with a good header";
}

TEST(VlunHeader, EveryIoctlRefusesBadVersionRsvdOrReturnFlagsAndLeavesTheStructUntouched) {
  Rig rig;
  Lun& other = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  uint64_t child = rig.attach_ok(kChild);
  uint64_t handle = rig.create_ok(cookie, 2);

  dk_cxlflash_attach attach{};
  attach.hdr = Rig::hdr(O_RDWR);
  expect_header_checked(attach, [&](dk_cxlflash_attach& a) {
    std::error_code ec = rig.driver.attach(*rig.lun, a, kParent);
    if (!ec) close(static_cast<int>(a.adap_fd));
    return ec;
  });

  dk_cxlflash_uvirtual uv{};
  uv.hdr = Rig::hdr();
  uv.context_id = cookie;
  uv.lun_size = 16;
  expect_header_checked(uv, [&](dk_cxlflash_uvirtual& a) { return rig.driver.user_virtual(*rig.lun, a, kParent); });

  dk_cxlflash_resize rs{};
  rs.hdr = Rig::hdr();
  rs.context_id = cookie;
  rs.rsrc_handle = handle;
  rs.req_size = 48;
  expect_header_checked(rs, [&](dk_cxlflash_resize& a) { return rig.driver.vlun_resize(*rig.lun, a, kParent); });

  dk_cxlflash_verify vf{};
  vf.hdr = Rig::hdr();
  vf.context_id = cookie;
  vf.rsrc_handle = handle;
  expect_header_checked(vf, [&](dk_cxlflash_verify& a) { return rig.driver.verify(*rig.lun, a, kParent); });

  dk_cxlflash_recover_afu rc{};
  rc.hdr = Rig::hdr();
  rc.context_id = cookie;
  expect_header_checked(rc, [&](dk_cxlflash_recover_afu& a) { return rig.driver.recover_afu(*rig.lun, a, kParent); });

  dk_cxlflash_clone cl{};
  cl.hdr = Rig::hdr();
  cl.context_id_src = cookie;
  cl.context_id_dst = child;
  expect_header_checked(cl, [&](dk_cxlflash_clone& a) { return rig.driver.vlun_clone(*rig.lun, a, kChild); });

  dk_cxlflash_release rl{};
  rl.hdr = Rig::hdr();
  rl.context_id = cookie;
  rl.rsrc_handle = handle;
  expect_header_checked(rl, [&](dk_cxlflash_release& a) { return rig.driver.release(*rig.lun, a, kParent); });

  uint64_t direct_ctx = rig.attach_ok(kParent, O_RDWR, &other);
  dk_cxlflash_udirect ud{};
  ud.hdr = Rig::hdr();
  ud.context_id = direct_ctx;
  expect_header_checked(ud, [&](dk_cxlflash_udirect& a) { return rig.driver.user_direct(other, a, kParent); });

  dk_cxlflash_detach dt{};
  dt.hdr = Rig::hdr();
  dt.context_id = direct_ctx;
  expect_header_checked(dt, [&](dk_cxlflash_detach& a) { return rig.driver.detach(other, a, kParent); });

  dk_cxlflash_manage_lun ml{};
  ml.hdr = Rig::hdr(DK_CXLFLASH_MANAGE_LUN_ENABLE_SUPERPIPE);
  ml.wwid[0] = 0x60;
  ml.wwid[15] = 0x01;
  ml.wwid[14] = 0x10;
  expect_header_checked(ml, [&](dk_cxlflash_manage_lun& a) { return rig.driver.manage_lun(other, a); });
}

TEST(VlunHeader, AnOutputStructReusedAsInputIsRefusedUntilReturnFlagsAreCleared) {
  Rig rig;
  Lun& second = rig.add_lun(4);
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(O_RDWR);
  ASSERT_FALSE(rig.driver.attach(*rig.lun, a, kParent));
  close(static_cast<int>(a.adap_fd));
  ASSERT_EQ(a.hdr.return_flags, DK_CXLFLASH_APP_CLOSE_ADAP_FD);
  a.hdr.flags |= DK_CXLFLASH_ATTACH_REUSE_CONTEXT;  // attach the second LUN with the same struct
  EXPECT_EQ(rig.driver.attach(second, a, kParent), einval());  // pitfall 6
  a.hdr.return_flags = 0;
  EXPECT_FALSE(rig.driver.attach(second, a, kParent));
}

// ---- ATTACH (spec §3.1) ----

TEST(VlunAttach, NewContextReturnsCookieFdAndLunGeometry) {
  Rig rig(RigOptions{.chunks = 64, .extra_blocks = 5});
  dk_cxlflash_attach a{};
  uint64_t cookie = 0;
  ASSERT_FALSE(rig.attach(&cookie, kParent, O_RDWR, nullptr, &a));
  uint64_t ctxid = cookie & 0xFFFFFFFF;
  EXPECT_LT(ctxid, 512u);
  EXPECT_NE(ctxid, static_cast<uint64_t>(rig.afu.master_ctxid()));
  EXPECT_NE(cookie >> 32, 0u);  // a generation tag in the high half
  EXPECT_EQ(a.mmio_size, 65536u);
  EXPECT_EQ(a.block_size, 4096u);
  EXPECT_EQ(a.last_lba, 64u * 16 + 5 - 1);  // the whole LUN, tail included
  EXPECT_EQ(a.max_xfer, 4096u);             // 16 MiB of 4 KiB blocks
  EXPECT_EQ(a.hdr.return_flags, DK_CXLFLASH_APP_CLOSE_ADAP_FD);
  EXPECT_NE(fcntl(static_cast<int>(a.adap_fd), F_GETFD), -1);
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.max_lba, a.last_lba);
  EXPECT_EQ(info.blk_len, 4096u);
  EXPECT_EQ(info.users, 0);  // ATTACH does not count as a user
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  // The context was programmed for user I/O: read+write capabilities, the RHT, its size.
  afu::MmioWindow& ctrl = rig.afu.ctrl_mmio(static_cast<int>(ctxid));
  EXPECT_EQ(ctrl.read64(SISL_CTRL_CTX_CAP), SISL_CTX_CAP_READ_CMD | SISL_CTX_CAP_WRITE_CMD);
  EXPECT_NE(ctrl.read64(SISL_CTRL_RHT_START), 0u);
  EXPECT_EQ(ctrl.read64(SISL_CTRL_RHT_CNT_ID) >> 48, 4096u);
}

TEST(VlunAttach, MaxXferIsSixteenMebibytesInDeviceBlocks) {
  Rig rig(RigOptions{.blk_len = 512});
  dk_cxlflash_attach a{};
  uint64_t cookie = 0;
  ASSERT_FALSE(rig.attach(&cookie, kParent, O_RDWR, nullptr, &a));
  EXPECT_EQ(a.block_size, 512u);
  EXPECT_EQ(a.max_xfer, 32768u);
}

TEST(VlunAttach, EachNewContextHasItsOwnCtxidAndCookie) {
  Rig rig;
  uint64_t a = rig.attach_ok(), b = rig.attach_ok();
  EXPECT_NE(a & 0xFFFFFFFF, b & 0xFFFFFFFF);
  EXPECT_NE(a >> 32, b >> 32);
}

TEST(VlunAttach, MoreThanFourInterruptsIsEinval) {
  Rig rig;
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(O_RDWR);
  a.num_interrupts = 5;
  dk_cxlflash_attach before = a;
  EXPECT_EQ(rig.driver.attach(*rig.lun, a, kParent), einval());
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  a.num_interrupts = 4;
  ASSERT_FALSE(rig.driver.attach(*rig.lun, a, kParent));
  close(static_cast<int>(a.adap_fd));
}

// Pitfall 7: permissions = (flags + 1) & 3, so O_ACCMODE gives none at all.
TEST(VlunAttach, PermissionsAreTheAccessModePlusOne) {
  struct Case {
    uint64_t flags;
    bool can_read, can_write;
  };
  for (Case c : {Case{O_RDONLY, true, false}, Case{O_WRONLY, false, true}, Case{O_RDWR, true, true},
                 Case{O_ACCMODE, false, false}}) {
    Rig rig;
    uint64_t cookie = rig.attach_ok(kParent, c.flags);
    uint64_t h = rig.create_ok(cookie, 1);
    auto data = rig.block(1);
    uint8_t write_rc = rig.io(cookie, h, true, 0, 1, data.data()).rc.afu_rc;
    uint8_t read_rc = rig.io(cookie, h, false, 0, 1, data.data()).rc.afu_rc;
    EXPECT_EQ(write_rc, c.can_write ? 0 : SISL_AFU_RC_RHT_RW_PERM) << "flags " << c.flags;
    EXPECT_EQ(read_rc, c.can_read ? 0 : SISL_AFU_RC_RHT_RW_PERM) << "flags " << c.flags;
  }
}

TEST(VlunAttach, ReuseAddsTheLunToTheContextWithoutANewFd) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(DK_CXLFLASH_ATTACH_REUSE_CONTEXT | O_RDWR);
  a.context_id = cookie;
  ASSERT_FALSE(rig.driver.attach(second, a, kParent));
  EXPECT_EQ(a.context_id, cookie);
  EXPECT_EQ(a.adap_fd, ~uint64_t{0});  // pitfall 22: -1 on reuse
  EXPECT_EQ(a.hdr.return_flags, 0u);
  EXPECT_EQ(a.last_lba, 8u * 16 - 1);
  // Both LUNs are usable through the one context.
  uint64_t h0 = rig.create_ok(cookie, 1);
  uint64_t h1 = rig.create_ok(cookie, 1, kParent, 0, &second);
  EXPECT_NE(h0, h1);
  EXPECT_TRUE(rig.write_block(cookie, h1, 3, 7));
  EXPECT_EQ(rig.read_block(cookie, h1, 3), rig.block(7));
}

TEST(VlunAttach, ReuseWithALunAlreadyAttachedIsEinval) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(DK_CXLFLASH_ATTACH_REUSE_CONTEXT | O_RDWR);
  a.context_id = cookie;
  dk_cxlflash_attach before = a;
  EXPECT_EQ(rig.driver.attach(*rig.lun, a, kParent), einval());
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
}

TEST(VlunAttach, ReuseOfAnotherProcesssOrAnUnknownContextIsEinval) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  EXPECT_EQ(rig.reuse(cookie, second, kStranger), einval());
  EXPECT_EQ(rig.reuse(cookie ^ (uint64_t{1} << 40), second), einval());  // wrong tag
  EXPECT_EQ(rig.reuse(511, second), einval());
  EXPECT_EQ(rig.reuse(1000, second), einval());  // ctxid out of range
  EXPECT_FALSE(rig.reuse(cookie, second));
}

TEST(VlunAttach, CapacityReadFailureIsEnodev) {
  Rig rig;
  rig.afu.set_port_sel(0);  // READ CAPACITY(16) cannot reach the LUN
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(O_RDWR);
  dk_cxlflash_attach before = a;
  EXPECT_EQ(rig.driver.attach(*rig.lun, a, kParent), errno_error(ENODEV));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  rig.afu.set_port_sel(0x3);
  EXPECT_NE(rig.attach_ok(), 0u);
}

TEST(VlunAttach, NoFreeHardwareContextIsEnodev) {
  Rig rig(RigOptions{.driver = {.chunk_shift = 4, .max_rht_per_context = 4}});
  std::vector<uint64_t> cookies;
  for (int i = 1; i < afu::MAX_CONTEXT; ++i) cookies.push_back(rig.attach_ok());  // ctxid 0 is the master's
  uint64_t cookie = 0;
  EXPECT_EQ(rig.attach(&cookie), errno_error(ENODEV));
  EXPECT_FALSE(rig.detach(cookies[100]));
  EXPECT_EQ(rig.attach_ok() & 0xFFFFFFFF, cookies[100] & 0xFFFFFFFF);
}

// An AFU whose ctx_cap register ignores writes, as when a context is closed underneath the driver.
class CapDroppingAfu final : public afu::Afu {
 public:
  explicit CapDroppingAfu(afu::Afu& base) : base_(base) {}
  Result<int> start_context() override { return base_.start_context(); }
  void stop_context(int ctxid) override {
    stopped.push_back(ctxid);
    base_.stop_context(ctxid);
  }
  afu::MmioWindow& user_mmio(int ctxid) override { return base_.user_mmio(ctxid); }
  afu::MmioWindow& ctrl_mmio(int ctxid) override {
    window_.base = &base_.ctrl_mmio(ctxid);
    window_.drop = drop_cap;
    return window_;
  }
  int master_ctxid() const override { return base_.master_ctxid(); }
  void set_lun_table(unsigned port, unsigned index, uint64_t lun_id) override {
    base_.set_lun_table(port, index, lun_id);
  }
  uint64_t afu_port_sel() const override { return base_.afu_port_sel(); }

  bool drop_cap = true;
  std::vector<int> stopped;

 private:
  struct Window final : afu::MmioWindow {
    uint64_t read64(uint32_t offset) override { return base->read64(offset); }
    void write64(uint32_t offset, uint64_t value) override {
      if (!(drop && offset == SISL_CTRL_CTX_CAP)) base->write64(offset, value);
    }
    afu::MmioWindow* base = nullptr;
    bool drop = false;
  };
  afu::Afu& base_;
  Window window_;
};

TEST(VlunAttach, CtxCapReadBackMismatchIsEagainAndStopsTheContext) {
  auto lun_store = store::make_memory_store(16 * 16 * 4096);
  afu::SimAfu sim;
  sim.add_lun(7, *lun_store, 0x3);
  CapDroppingAfu afu(sim);
  auto created = Driver::create(afu, DriverOptions{.chunk_shift = 4});
  ASSERT_TRUE(created) << created.error().message();
  Driver& driver = *created.value();
  Lun& lun = driver.add_lun(7, {1}, 0x3);
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(O_RDWR);
  dk_cxlflash_attach before = a;
  EXPECT_EQ(driver.attach(lun, a, kParent), errno_error(EAGAIN));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  ASSERT_EQ(afu.stopped.size(), 1u);
  afu.drop_cap = false;
  ASSERT_FALSE(driver.attach(lun, a, kParent));
  close(static_cast<int>(a.adap_fd));
  EXPECT_EQ(static_cast<int>(a.context_id & 0xFFFFFFFF), afu.stopped[0]);  // the slot was given back
}

// ---- DETACH (spec §3.6) ----

TEST(VlunDetach, ReleasesEveryHandleAndEndsTheContextWithItsLastLun) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  for (int i = 0; i < 3; ++i) rig.create_ok(cookie, 5);
  EXPECT_EQ(rig.free_chunks(), 64u - 15);
  const int ctxid = static_cast<int>(cookie & 0xFFFFFFFF);
  ASSERT_FALSE(rig.detach(cookie));
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.users, 0);
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  EXPECT_EQ(info.total_chunks, 0u);  // the allocator went with the last user
  // The context is gone: its cookie is refused and its control registers are cleared.
  uint64_t h = 0;
  EXPECT_EQ(rig.create(cookie, 1, &h), einval());
  EXPECT_EQ(rig.driver.mmio(cookie, kParent), nullptr);
  afu::MmioWindow& ctrl = rig.afu.ctrl_mmio(ctxid);
  EXPECT_EQ(ctrl.read64(SISL_CTRL_RHT_START), 0u);
  EXPECT_EQ(ctrl.read64(SISL_CTRL_RHT_CNT_ID), 0u);
  EXPECT_EQ(ctrl.read64(SISL_CTRL_CTX_CAP), 0u);
  EXPECT_EQ(rig.detach(cookie), einval());
}

TEST(VlunDetach, ReleasesDirectHandles) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(cookie, &h));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::physical);
  ASSERT_FALSE(rig.detach(cookie));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::none);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 0);
}

TEST(VlunDetach, ContextLivesUntilItsLastLunIsDetached) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  ASSERT_FALSE(rig.reuse(cookie, second));
  uint64_t h0 = rig.create_ok(cookie, 2);
  uint64_t h1 = rig.create_ok(cookie, 2, kParent, 0, &second);
  ASSERT_TRUE(rig.write_block(cookie, h1, 0, 42));
  dk_cxlflash_detach d{};
  d.hdr = Rig::hdr();
  d.context_id = cookie;
  ASSERT_FALSE(rig.driver.detach(*rig.lun, d, kParent));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 0);
  // Only the first LUN's handle went; the context and the other LUN's vLUN are still there.
  EXPECT_EQ(rig.read_block(cookie, h1, 0), rig.block(42));
  EXPECT_EQ(rig.io(cookie, h0, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
  uint64_t h = 0;
  EXPECT_EQ(rig.create(cookie, 1, &h), einval());  // the first LUN is no longer attached
  EXPECT_EQ(rig.driver.detach(*rig.lun, d, kParent), einval());
  EXPECT_FALSE(rig.detach(cookie, kParent, &second));
  EXPECT_EQ(rig.driver.lun_info(second).users, 0);
  EXPECT_EQ(rig.driver.mmio(cookie, kParent), nullptr);
}

TEST(VlunDetach, UnknownForeignOrUnattachedContextIsEinval) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  EXPECT_EQ(rig.detach(cookie + (uint64_t{1} << 32)), einval());
  EXPECT_EQ(rig.detach(cookie, kStranger), einval());
  EXPECT_EQ(rig.detach(cookie, kParent, &second), einval());
  EXPECT_FALSE(rig.detach(cookie));
}

// ---- context ownership (spec §3.0, pitfall 21) ----

TEST(VlunContext, StaleCookieOfAReusedCtxidIsRejected) {
  Rig rig;
  uint64_t old_cookie = rig.attach_ok();
  ASSERT_FALSE(rig.detach(old_cookie));
  uint64_t cookie = rig.attach_ok();
  ASSERT_EQ(cookie & 0xFFFFFFFF, old_cookie & 0xFFFFFFFF);  // same hardware context again
  ASSERT_NE(cookie, old_cookie);
  uint64_t h = 0;
  EXPECT_EQ(rig.create(old_cookie, 1, &h), einval());
  EXPECT_EQ(rig.driver.mmio(old_cookie, kParent), nullptr);
  EXPECT_EQ(rig.detach(old_cookie), einval());
  EXPECT_FALSE(rig.create(cookie, 1, &h));
}

TEST(VlunContext, AnotherProcesssCookieIsRejectedByEveryIoctl) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 2);
  uint64_t last = 0, out = 0;
  EXPECT_EQ(rig.create(cookie, 1, &out, nullptr, kStranger), einval());
  EXPECT_EQ(rig.resize(cookie, h, 4, &last, kStranger), einval());
  EXPECT_EQ(rig.release(cookie, h, kStranger), einval());
  dk_cxlflash_verify v{};
  v.hdr = Rig::hdr();
  v.context_id = cookie;
  v.rsrc_handle = h;
  EXPECT_EQ(rig.driver.verify(*rig.lun, v, kStranger), einval());
  dk_cxlflash_recover_afu r{};
  r.hdr = Rig::hdr();
  r.context_id = cookie;
  EXPECT_EQ(rig.driver.recover_afu(*rig.lun, r, kStranger), einval());
  EXPECT_EQ(rig.reuse(cookie, second, kStranger), einval());
  EXPECT_EQ(rig.detach(cookie, kStranger), einval());
  EXPECT_EQ(rig.driver.mmio(cookie, kStranger), nullptr);
  EXPECT_EQ(rig.driver.lxt(*rig.lun, cookie, h, kStranger).error(), einval());
  // Even the owner's child may not use it, except as a clone source (spec §6).
  EXPECT_EQ(rig.resize(cookie, h, 4, &last, kChild), einval());
  // Nothing changed for the owner.
  EXPECT_EQ(rig.size_chunks(cookie, h), 2u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
}

TEST(VlunContext, TheDefaultCallerIsTheCallingProcess) {
  Rig rig;
  dk_cxlflash_attach a{};
  a.hdr = Rig::hdr(O_RDWR);
  ASSERT_FALSE(rig.driver.attach(*rig.lun, a));
  close(static_cast<int>(a.adap_fd));
  dk_cxlflash_uvirtual v{};
  v.hdr = Rig::hdr();
  v.context_id = a.context_id;
  v.lun_size = 1;
  EXPECT_FALSE(rig.driver.user_virtual(*rig.lun, v));
  v.hdr.return_flags = 0;
  EXPECT_EQ(rig.driver.user_virtual(*rig.lun, v, Caller{getpid() + 1, getppid()}), einval());
  EXPECT_NE(rig.driver.mmio(a.context_id), nullptr);
}

TEST(VlunDriver, ChunksMustBeBetweenTwoBlocksAndTheHardwares2To16) {
  afu::SimAfu afu;
  // Refused as an error value (EINVAL), not an exception.
  for (unsigned shift : {0u, 17u, 32u}) {
    auto refused = Driver::create(afu, DriverOptions{.chunk_shift = shift});
    ASSERT_FALSE(refused) << "chunk_shift " << shift;
    EXPECT_EQ(refused.error(), errno_error(EINVAL)) << "chunk_shift " << shift;
  }
  auto smallest = Driver::create(afu, DriverOptions{.chunk_shift = 1});
  ASSERT_TRUE(smallest);
  EXPECT_EQ(smallest.value()->chunk_shift(), 1u);
  auto hardware = Driver::create(afu);
  ASSERT_TRUE(hardware);
  EXPECT_EQ(hardware.value()->chunk_shift(), MC_CHUNK_SHIFT);
}

// ---- MANAGE_LUN (spec §3.9) ----

dk_cxlflash_manage_lun manage(uint64_t flags, uint64_t lun_id) {
  dk_cxlflash_manage_lun m{};
  m.hdr = Rig::hdr(flags);
  m.wwid[0] = 0x60;
  m.wwid[15] = static_cast<uint8_t>(lun_id);
  m.wwid[14] = static_cast<uint8_t>(lun_id >> 8);
  return m;
}

TEST(VlunManageLun, DisableIsBusyWhileAnyHandleIsOpen) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  auto disable = manage(DK_CXLFLASH_MANAGE_LUN_DISABLE_SUPERPIPE, 0x1000);
  EXPECT_EQ(rig.driver.manage_lun(*rig.lun, disable), errno_error(EBUSY));
  ASSERT_FALSE(rig.release(cookie, h));
  ASSERT_FALSE(rig.direct(cookie, &h));
  EXPECT_EQ(rig.driver.manage_lun(*rig.lun, disable), errno_error(EBUSY));
  ASSERT_FALSE(rig.release(cookie, h));
  EXPECT_FALSE(rig.driver.manage_lun(*rig.lun, disable));
  // Now every superpipe ioctl on the LUN is refused.
  uint64_t cookie2 = 0;
  EXPECT_EQ(rig.attach(&cookie2), einval());
  EXPECT_EQ(rig.create(cookie, 1, &h), einval());
  EXPECT_EQ(rig.direct(cookie, &h), einval());
  EXPECT_EQ(rig.detach(cookie), einval());
  auto enable = manage(DK_CXLFLASH_MANAGE_LUN_ENABLE_SUPERPIPE, 0x1000);
  EXPECT_FALSE(rig.driver.manage_lun(*rig.lun, enable));
  EXPECT_FALSE(rig.create(cookie, 1, &h));
}

TEST(VlunManageLun, IoctlsOnALunNotEnabledForSuperpipeAreEinval) {
  Rig rig(RigOptions{.superpipe = false});
  Lun& enabled = rig.add_lun(8);
  uint64_t cookie = 0;
  EXPECT_EQ(rig.attach(&cookie), einval());
  cookie = rig.attach_ok(kParent, O_RDWR, &enabled);
  uint64_t h = rig.create_ok(cookie, 1, kParent, 0, &enabled);
  // A context and handle that exist, presented on the LUN that is not enabled.
  uint64_t out = 0, last = 0;
  EXPECT_EQ(rig.reuse(cookie, *rig.lun), einval());
  EXPECT_EQ(rig.create(cookie, 1, &out), einval());
  EXPECT_EQ(rig.direct(cookie, &out), einval());
  EXPECT_EQ(rig.resize(cookie, h, 2, &last), einval());
  EXPECT_EQ(rig.release(cookie, h), einval());
  EXPECT_EQ(rig.detach(cookie), einval());
  EXPECT_EQ(rig.clone(cookie, cookie + 1), einval());
  dk_cxlflash_verify v{};
  v.hdr = Rig::hdr();
  v.context_id = cookie;
  v.rsrc_handle = h;
  EXPECT_EQ(rig.driver.verify(*rig.lun, v, kParent), einval());
  dk_cxlflash_recover_afu r{};
  r.hdr = Rig::hdr();
  r.context_id = cookie;
  EXPECT_EQ(rig.driver.recover_afu(*rig.lun, r, kParent), einval());
  // MANAGE_LUN itself is exempt, and enabling makes the LUN usable.
  auto enable = manage(DK_CXLFLASH_MANAGE_LUN_ENABLE_SUPERPIPE, 0x1000);
  ASSERT_FALSE(rig.driver.manage_lun(*rig.lun, enable));
  EXPECT_FALSE(rig.reuse(cookie, *rig.lun));
  EXPECT_FALSE(rig.create(cookie, 1, &out));
}

TEST(VlunManageLun, WithoutFlagsItOnlyRegistersTheLun) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  rig.create_ok(cookie, 1);
  auto none = manage(0, 0x1000);
  EXPECT_FALSE(rig.driver.manage_lun(*rig.lun, none));
  uint64_t h = 0;
  EXPECT_FALSE(rig.create(cookie, 1, &h));
}

// ---- RECOVER_AFU (spec §3.8): no adapter resets in the simulator ----

TEST(VlunRecoverAfu, AHealthyContextHasNothingToRecover) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_recover_afu r{};
  r.hdr = Rig::hdr();
  r.context_id = cookie;
  r.reason = 7;
  ASSERT_FALSE(rig.driver.recover_afu(*rig.lun, r, kParent));
  EXPECT_EQ(r.hdr.return_flags, 0u);
  EXPECT_EQ(r.context_id, cookie);
  EXPECT_EQ(r.mmio_size, 65536u);
  r = dk_cxlflash_recover_afu{};
  r.hdr = Rig::hdr();
  r.context_id = cookie + (uint64_t{1} << 32);
  EXPECT_EQ(rig.driver.recover_afu(*rig.lun, r, kParent), einval());
}

}  // namespace
}  // namespace vlunfs::vlun::testing
