// vlunctl's commands in the daemon, checked against the caller, over a memory store: no FUSE.
#include "client/simulated_afu.h"
#include "fs/control_commands.h"
#include "fs/control_server.h"
#include "vlunfs/control_ioctl.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vlunfs::fs {
namespace {

constexpr uint32_t kAlice = 1000, kBob = 1001, kUsers = 100;

class ControlCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto mem = store::make_memory_store(256ull << 20);
    meta::FormatOptions fo;
    fo.chunk_shift = 4;  // 64 KiB chunks: beyond the hardware, for fast tests
    fo.journal_bytes = 1 << 20;
    fo.checkpoint_bytes = 1 << 20;
    ASSERT_TRUE(meta::format(*mem, fo));
    std::string why;
    auto opened = Filesystem::open_store(std::move(mem), {}, &why);
    ASSERT_TRUE(opened) << why;
    fs_ = std::move(opened).value();
    ASSERT_FALSE(fs_->start(client::simulated_afu(), &why)) << why;
    // /alice (0700, alice's) holding /alice/secret; /pub (1777) holding alice's /pub/notes (0640).
    alice_dir_ = made(fs_->mkdir(meta::ROOT_INO, "alice", 0700, {kAlice, kUsers}));
    made(fs_->create(alice_dir_, "secret", S_IFREG | 0600, {kAlice, kUsers}));
    pub_ = made(fs_->mkdir(meta::ROOT_INO, "pub", 01777, {0, 0}));
    notes_ = made(fs_->create(pub_, "notes", S_IFREG | 0640, {kAlice, kUsers}));
  }

  static uint64_t made(const Result<Attr>& a) {
    EXPECT_TRUE(a) << a.error().message();
    return a ? static_cast<uint64_t>(a.value().st.st_ino) : 0;
  }

  std::unique_ptr<Filesystem> fs_;
  uint64_t alice_dir_ = 0, pub_ = 0, notes_ = 0;
  const Caller alice_{kAlice, kUsers, {}};
  const Caller bob_in_users_{kBob, 2000, {kUsers}};
  const Caller stranger_{kBob, 2000, {}};
  const Caller root_{0, 0, {}, true, true};
};

TEST_F(ControlCommandsTest, ListingShowsOnlyWhatTheCallerCouldFind) {
  const std::string everything = list_vluns(*fs_, root_);
  EXPECT_NE(everything.find("\tpath=/alice/secret\t"), std::string::npos);
  EXPECT_NE(everything.find("\tpath=/pub/notes\t"), std::string::npos);
  const std::string strangers = list_vluns(*fs_, stranger_);
  EXPECT_EQ(strangers.find("/alice/secret"), std::string::npos);
  EXPECT_NE(strangers.find("\tpath=/pub/notes\t"), std::string::npos);
  EXPECT_NE(list_vluns(*fs_, alice_).find("\tpath=/alice/secret\t"), std::string::npos);
  // The counters of `vlunctl stats` name the same files: the pool's for everyone, a file's only
  // for whoever may list it.
  const std::string stranger_stats = stats_report(*fs_, stranger_);
  EXPECT_EQ(stranger_stats.rfind("pool\t", 0), 0u);
  EXPECT_EQ(stranger_stats.find("/alice/secret"), std::string::npos);
  EXPECT_NE(stranger_stats.find("\tpath=/pub/notes\t"), std::string::npos);
  EXPECT_NE(stats_report(*fs_, root_).find("\tpath=/alice/secret\t"), std::string::npos);
}

TEST_F(ControlCommandsTest, CloneNeedsReadOnTheSourceAndWriteOnTheDirectory) {
  EXPECT_EQ(clone_vlun(*fs_, stranger_, notes_, pub_, "copy", false), errno_error(EACCES));
  EXPECT_EQ(clone_vlun(*fs_, bob_in_users_, notes_, meta::ROOT_INO, "copy", false), errno_error(EACCES));
  EXPECT_EQ(clone_vlun(*fs_, bob_in_users_, notes_, alice_dir_, "copy", false), errno_error(EACCES));
  EXPECT_FALSE(fs_->lookup(pub_, "copy"));
  ASSERT_FALSE(clone_vlun(*fs_, bob_in_users_, notes_, pub_, "copy", true));
  auto copy = fs_->lookup(pub_, "copy");
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy.value().st.st_uid, kBob);  // the caller's file, as with cp
  EXPECT_EQ(copy.value().st.st_gid, 2000u);
}

TEST_F(ControlCommandsTest, CloneIntoADirectoryBelowOneTheCallerCannotSearchIsRefused) {
  const uint64_t inner = made(fs_->mkdir(alice_dir_, "drop", 0777, {kAlice, kUsers}));
  EXPECT_EQ(clone_vlun(*fs_, bob_in_users_, notes_, inner, "copy", false), errno_error(EACCES));
  ASSERT_FALSE(clone_vlun(*fs_, alice_, notes_, inner, "copy", false));
  EXPECT_TRUE(fs_->lookup(inner, "copy"));
}

TEST_F(ControlCommandsTest, ThinNeedsWriteOnTheFile) {
  EXPECT_EQ(set_vlun_thin(*fs_, bob_in_users_, notes_, true), errno_error(EACCES));
  EXPECT_FALSE(set_vlun_thin(*fs_, alice_, notes_, true));
  EXPECT_FALSE(set_vlun_thin(*fs_, root_, notes_, false));
}

TEST_F(ControlCommandsTest, AListingLongerThanAPageIsReadInPagesOfOneAnswer) {
  for (int i = 0; i < 600; ++i) made(fs_->create(pub_, "file-" + std::to_string(i), S_IFREG | 0644, {0, 0}));
  const std::string whole = list_vluns(*fs_, root_);
  ASSERT_GT(whole.size(), size_t{VLUNFS_REPORT_PAGE});
  std::string paged;
  uint64_t id = 0;
  vlunfs_ioc_report r{};
  std::vector<char> out;
  do {
    r.header.version = VLUNFS_IOC_VERSION;
    r.what = VLUNFS_REPORT_VLUNS;
    r.offset = paged.size();
    r.answer_id = id;
    ASSERT_FALSE(answer_control_ioctl(*fs_, root_, meta::ROOT_INO, VLUNFS_IOC_REPORT, &r, sizeof r, sizeof r, &out));
    ASSERT_EQ(out.size(), sizeof r);
    std::memcpy(&r, out.data(), sizeof r);
    EXPECT_EQ(r.header.magic, VLUNFS_IOC_MAGIC);
    paged.append(r.text, r.length);
    id = r.answer_id;
  } while (paged.size() < r.total);
  EXPECT_EQ(paged, whole);
  // The namespace changes between two pages: the next page is refused, not torn.
  made(fs_->create(pub_, "late", S_IFREG | 0644, {0, 0}));
  r.offset = VLUNFS_REPORT_PAGE;
  r.answer_id = id;
  EXPECT_EQ(answer_control_ioctl(*fs_, root_, meta::ROOT_INO, VLUNFS_IOC_REPORT, &r, sizeof r, sizeof r, &out),
            errno_error(ESTALE));
}

TEST_F(ControlCommandsTest, RequestsOfAnotherVersionOrSizeAreRefused) {
  vlunfs_ioc_thin t{};
  std::vector<char> out;
  t.header.version = VLUNFS_IOC_VERSION + 1;
  EXPECT_EQ(answer_control_ioctl(*fs_, root_, notes_, VLUNFS_IOC_SET_THIN, &t, sizeof t, sizeof t, &out),
            errno_error(EPROTO));
  t.header.version = VLUNFS_IOC_VERSION;
  EXPECT_EQ(answer_control_ioctl(*fs_, root_, notes_, VLUNFS_IOC_SET_THIN, &t, sizeof t - 1, sizeof t, &out),
            errno_error(EINVAL));
  EXPECT_EQ(answer_control_ioctl(*fs_, root_, notes_, 0x5401 /* TCGETS */, &t, sizeof t, sizeof t, &out),
            errno_error(ENOTTY));
}

}  // namespace
}  // namespace vlunfs::fs
