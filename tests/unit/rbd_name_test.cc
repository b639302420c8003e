// Names and options of RBD images (no cluster needed).
#include "store/rbd/named_store.h"
#include "store/rbd/rbd_store.h"

#include <gtest/gtest.h>

namespace vlunfs::store {
namespace {

TEST(RbdName, PoolAndImageAreSplitAtTheSlash) {
  auto name = parse_rbd_name("rbd:vlunfs/pool0");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->pool, "vlunfs");
  EXPECT_EQ(name->image, "pool0");
  EXPECT_EQ(name->text(), "rbd:vlunfs/pool0");
}

TEST(RbdName, APathIsNoRbdName) {
  EXPECT_FALSE(parse_rbd_name("/var/lib/flash.img"));
  EXPECT_FALSE(parse_rbd_name("rbd.img"));
  EXPECT_FALSE(names_rbd_image("./rbd:x/y"));
  EXPECT_TRUE(names_rbd_image("rbd:x/y"));
}

TEST(RbdName, WithoutAPoolOrWithANamespaceTheNameIsIncomplete) {
  for (const char* text : {"rbd:pool0", "rbd:/pool0", "rbd:vlunfs/", "rbd:a/b/c", "rbd:"}) {
    auto name = parse_rbd_name(text);
    ASSERT_TRUE(name) << text;
    EXPECT_TRUE(name->pool.empty() || name->image.empty()) << text;
  }
}

TEST(CephOptions, ConfIdAndTakeoverAreTakenAndTheRestKeptInOrder) {
  CephClientOptions ceph;
  bool takeover = false;
  std::string rest, why;
  ASSERT_TRUE(take_ceph_options("allow_other,ceph_conf=/tmp/c.conf,ro,ceph_id=second,takeover", &ceph, &takeover,
                                &rest, &why));
  EXPECT_EQ(ceph.conf_path, "/tmp/c.conf");
  EXPECT_EQ(ceph.id, "second");
  EXPECT_TRUE(takeover);
  EXPECT_EQ(rest, "allow_other,ro");
}

TEST(CephOptions, DefaultsAreTheClustersUsualOnes) {
  CephClientOptions ceph;
  EXPECT_EQ(ceph.conf_path, "/etc/ceph/ceph.conf");
  EXPECT_EQ(ceph.id, "admin");
}

TEST(CephOptions, AnEmptyValueIsRefused) {
  CephClientOptions ceph;
  bool takeover = false;
  std::string rest, why;
  EXPECT_FALSE(take_ceph_options("ceph_id=", &ceph, &takeover, &rest, &why));
  EXPECT_NE(why.find("ceph_id="), std::string::npos);
}

}  // namespace
}  // namespace vlunfs::store
