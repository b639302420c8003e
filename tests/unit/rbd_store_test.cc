// The RBD store against a real (throwaway) Ceph cluster: tests/rbd-cluster/start.sh, shared by
// every rbd test of a ctest run (the rbd_cluster fixture, tests/rbd-cluster/tests.cmake), which
// passes its ceph.conf in VLUNFS_RBD_CEPH_CONF.
#include "store/rbd/named_store.h"
#include "store/rbd/rbd_store.h"

#include <gtest/gtest.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace vlunfs::store {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kObject = 4 * kMiB;  // the images' object size (order 22)

std::string ceph_conf() {
  const char* conf = std::getenv("VLUNFS_RBD_CEPH_CONF");
  return conf ? conf : "";
}

class RbdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ceph_conf().empty()) GTEST_FAIL() << "VLUNFS_RBD_CEPH_CONF is not set: run through ctest (the rbd_cluster "
                                             "fixture starts the cluster), or start tests/rbd-cluster/start.sh DIR";
    client_.conf_path = ceph_conf();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name_.pool = "vlunfs";
    name_.image = std::string("unit-") + info->name() + "-" + std::to_string(::getpid());
  }
  void TearDown() override {
    if (!ceph_conf().empty()) (void)remove_rbd_image(name_, client_);
  }

  RbdStoreOptions options(uint64_t create_size = 64 * kMiB) const {
    RbdStoreOptions o;
    o.client = client_;
    o.block_size = 4096;
    o.create_size = create_size;
    o.exclusive_lock = true;
    return o;
  }

  std::unique_ptr<BlockStore> open_or_fail(const RbdStoreOptions& o, RbdOpenReport* report = nullptr) {
    RbdOpenReport local;
    auto opened = open_rbd_store(name_, o, report ? report : &local);
    EXPECT_TRUE(opened) << (report ? report : &local)->detail;
    return opened ? std::move(opened).value() : nullptr;
  }

  // Bytes the cluster holds for the image, counted by whole objects (fast-diff).
  uint64_t allocated_bytes() {
    rados_t cluster;
    rados_ioctx_t io;
    rbd_image_t image;
    uint64_t total = 0;
    EXPECT_EQ(rados_create(&cluster, "admin"), 0);
    EXPECT_EQ(rados_conf_read_file(cluster, client_.conf_path.c_str()), 0);
    EXPECT_EQ(rados_connect(cluster), 0);
    EXPECT_EQ(rados_ioctx_create(cluster, name_.pool.c_str(), &io), 0);
    EXPECT_EQ(rbd_open_read_only(io, name_.image.c_str(), &image, nullptr), 0);
    uint64_t size = 0;
    rbd_get_size(image, &size);
    auto count = [](uint64_t, size_t length, int exists, void* arg) {
      if (exists) *static_cast<uint64_t*>(arg) += length;
      return 0;
    };
    EXPECT_EQ(rbd_diff_iterate2(image, nullptr, 0, size, 0, 1, count, &total), 0);
    rbd_close(image);
    rados_ioctx_destroy(io);
    rados_shutdown(cluster);
    return total;
  }

  CephClientOptions client_;
  RbdImageName name_;
};

std::vector<std::byte> pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  std::mt19937 gen(seed);
  for (auto& b : v) b = static_cast<std::byte>(gen());
  return v;
}

TEST_F(RbdStoreTest, CreatesTheImageWithTheSizeAskedAndRefusesIoOutsideIt) {
  RbdOpenReport report;
  auto store = open_or_fail(options(64 * kMiB), &report);
  ASSERT_TRUE(store);
  EXPECT_TRUE(report.created);
  EXPECT_EQ(store->size_bytes(), 64 * kMiB);
  EXPECT_EQ(store->block_size(), 4096u);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(store->read(64 * kMiB - 2048, buf).value(), EINVAL);
  EXPECT_EQ(store->write(64 * kMiB, std::span<const std::byte>(buf).first(1)).value(), EINVAL);
  EXPECT_EQ(store->discard(60 * kMiB, 8 * kMiB).value(), EINVAL);
}

TEST_F(RbdStoreTest, WhatIsWrittenAndFlushedReadsBackExactlyAfterReopening) {
  {
    auto store = open_or_fail(options());
    ASSERT_TRUE(store);
    // Spans an object boundary, and unaligned pieces.
    auto a = pattern(3 * kMiB + 123, 1);
    ASSERT_FALSE(store->write(kObject - kMiB, a));
    auto b = pattern(77, 2);
    ASSERT_FALSE(store->write(40 * kMiB + 5, b));
    ASSERT_FALSE(store->flush());
  }
  auto store = open_or_fail(options());
  ASSERT_TRUE(store);
  std::vector<std::byte> got(3 * kMiB + 123);
  ASSERT_FALSE(store->read(kObject - kMiB, got));
  EXPECT_TRUE(got == pattern(3 * kMiB + 123, 1));
  std::vector<std::byte> small(77);
  ASSERT_FALSE(store->read(40 * kMiB + 5, small));
  EXPECT_TRUE(small == pattern(77, 2));
  std::vector<std::byte> never(4096, std::byte{0xff});
  ASSERT_FALSE(store->read(50 * kMiB, never));
  EXPECT_TRUE(never == std::vector<std::byte>(4096));  // never written: zeros
}

TEST_F(RbdStoreTest, ManyThreadsHaveRequestsInFlightAtOnce) {
  auto store = open_or_fail(options());
  ASSERT_TRUE(store);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint32_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < 16; ++i) {
        const uint64_t offset = (t * 16 + i) * 65536ull;
        auto data = pattern(65536, t * 100 + i);
        if (store->write(offset, data)) failures++;
        std::vector<std::byte> got(65536);
        if (store->read(offset, got) || got != data) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_FALSE(store->flush());
}

TEST_F(RbdStoreTest, DiscardReadsAsZerosEvenInsideAnObjectAndGivesWholeObjectsBack) {
  auto store = open_or_fail(options());
  ASSERT_TRUE(store);
  auto data = pattern(16 * kMiB, 3);
  ASSERT_FALSE(store->write(0, data));
  ASSERT_FALSE(store->flush());
  EXPECT_EQ(allocated_bytes(), 16 * kMiB);
  // A piece of one object: zeros there, the rest untouched.
  ASSERT_FALSE(store->discard(kMiB + 512, 4096));
  std::vector<std::byte> got(kMiB * 2);
  ASSERT_FALSE(store->read(0, got));
  for (size_t i = 0; i < got.size(); ++i) {
    const bool discarded = i >= kMiB + 512 && i < kMiB + 512 + 4096;
    ASSERT_EQ(got[i], discarded ? std::byte{0} : data[i]) << "at byte " << i;
  }
  // Two whole objects: the cluster no longer holds them.
  ASSERT_FALSE(store->discard(kObject, 2 * kObject));
  ASSERT_FALSE(store->flush());
  EXPECT_EQ(allocated_bytes(), 8 * kMiB);
  std::vector<std::byte> gone(kObject);
  ASSERT_FALSE(store->read(kObject, gone));
  EXPECT_TRUE(gone == std::vector<std::byte>(kObject));
}

TEST_F(RbdStoreTest, ASecondExclusiveOpenIsRefusedAndNamesTheHolder) {
  auto first = open_or_fail(options());
  ASSERT_TRUE(first);
  RbdOpenReport report;
  auto second = open_rbd_store(name_, options(), &report);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().value(), EBUSY);
  EXPECT_NE(report.lock_holder.find("client."), std::string::npos) << report.lock_holder;
  EXPECT_NE(report.detail.find(report.lock_holder), std::string::npos) << report.detail;
  EXPECT_NE(report.detail.find("vlunctl takeover"), std::string::npos) << report.detail;
  // Read-only (fsck -n, vlunctl info) is refused too while the pool is held.
  RbdStoreOptions ro = options(0);
  ro.read_only = true;
  RbdOpenReport ro_report;
  auto reader = open_rbd_store(name_, ro, &ro_report);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().value(), EBUSY);
  // Once the first lets go, the image is free again.
  first.reset();
  auto third = open_or_fail(options());
  EXPECT_TRUE(third);
}

TEST_F(RbdStoreTest, ATakeoverFencesTheOldHolderWhoseWritesFailWithEio) {
  std::atomic<int> fenced_calls{0};
  RbdStoreOptions old_options = options();
  old_options.on_fenced = [&](const std::string& message) {
    fenced_calls++;
    EXPECT_NE(message.find(name_.text()), std::string::npos) << message;
  };
  auto old_holder = open_or_fail(old_options);
  ASSERT_TRUE(old_holder);
  auto before = pattern(65536, 4);
  ASSERT_FALSE(old_holder->write(0, before));
  ASSERT_FALSE(old_holder->flush());

  RbdStoreOptions new_options = options();
  new_options.break_lock = true;
  RbdOpenReport report;
  auto new_holder = open_or_fail(new_options, &report);
  ASSERT_TRUE(new_holder);
  EXPECT_NE(report.broken_holder.find("client."), std::string::npos) << report.broken_holder;

  // The old holder can no longer change a byte, and says so once.
  auto stale = pattern(65536, 5);
  EXPECT_EQ(old_holder->write(0, stale).value(), EIO);
  EXPECT_EQ(old_holder->write(kMiB, stale).value(), EIO);
  EXPECT_EQ(old_holder->flush().value(), EIO);
  EXPECT_EQ(old_holder->discard(0, kObject).value(), EIO);
  EXPECT_EQ(fenced_calls.load(), 1);

  std::vector<std::byte> got(65536);
  ASSERT_FALSE(new_holder->read(0, got));
  EXPECT_TRUE(got == before);
  std::vector<std::byte> untouched(65536, std::byte{1});
  ASSERT_FALSE(new_holder->read(kMiB, untouched));
  EXPECT_TRUE(untouched == std::vector<std::byte>(65536));
  auto after = pattern(65536, 6);
  EXPECT_FALSE(new_holder->write(0, after));
  EXPECT_FALSE(new_holder->flush());
}

TEST_F(RbdStoreTest, BreakRbdLockNamesWhomItBrokeAndNobodyWhenFree) {
  std::string detail;
  {
    auto holder = open_or_fail(options());
    ASSERT_TRUE(holder);
    auto broken = break_rbd_lock(name_, client_, &detail);
    ASSERT_TRUE(broken) << detail;
    EXPECT_NE(broken.value().find("client."), std::string::npos) << broken.value();
  }
  auto again = break_rbd_lock(name_, client_, &detail);
  ASSERT_TRUE(again) << detail;
  EXPECT_EQ(again.value(), "");
}

TEST_F(RbdStoreTest, AMissingImageOrPoolIsRefusedWithWhatToDo) {
  RbdOpenReport report;
  auto missing = open_rbd_store(name_, options(0), &report);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().value(), ENOENT);
  EXPECT_NE(report.detail.find("mkfs.vlunfs"), std::string::npos) << report.detail;
  RbdImageName no_pool{"no-such-pool", "x"};
  RbdOpenReport pool_report;
  auto nowhere = open_rbd_store(no_pool, options(), &pool_report);
  ASSERT_FALSE(nowhere);
  EXPECT_NE(pool_report.detail.find("ceph osd pool create"), std::string::npos) << pool_report.detail;
}

TEST_F(RbdStoreTest, AnUnreadableConfIsRefusedNamingIt) {
  RbdStoreOptions o = options();
  o.client.conf_path = "/nonexistent/ceph.conf";
  RbdOpenReport report;
  auto opened = open_rbd_store(name_, o, &report);
  ASSERT_FALSE(opened);
  EXPECT_NE(report.detail.find("/nonexistent/ceph.conf"), std::string::npos) << report.detail;
}

TEST_F(RbdStoreTest, TheNamedOpenerOpensRbdNamesWithTheirLock) {
  { ASSERT_TRUE(open_or_fail(options())); }  // creates it
  NamedStoreOptions so;
  so.ceph = client_;
  so.wait.limit = std::chrono::milliseconds(300);
  std::string detail;
  auto first = open_named_store(name_.text(), so, &detail);
  ASSERT_TRUE(first) << detail;
  EXPECT_EQ(first.value()->size_bytes(), 64 * kMiB);
  auto second = open_named_store(name_.text(), so, &detail);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().value(), EBUSY);
  EXPECT_NE(detail.find("is in use"), std::string::npos) << detail;
}

}  // namespace
}  // namespace vlunfs::store
