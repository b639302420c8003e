// Connecting to the cluster (rbd_session.h).
#include "store/rbd/rbd_session.h"

#include <cstring>

namespace vlunfs::store {

RadosSession::~RadosSession() {
  if (ioctx_) rados_ioctx_destroy(ioctx_);
  if (cluster_) rados_shutdown(cluster_);
}

std::error_code RadosSession::connect(const CephClientOptions& client, const std::string& pool, std::string* detail) {
  if (int r = rados_create(&cluster_, client.id.c_str()); r < 0) {
    cluster_ = nullptr;
    *detail = "cannot make a Ceph client for client." + client.id + ": " + std::strerror(-r);
    return ceph_error(r);
  }
  if (int r = rados_conf_read_file(cluster_, client.conf_path.c_str()); r < 0) {
    *detail = "cannot read the Ceph configuration " + client.conf_path + ": " + std::strerror(-r) +
              " (give it with -o ceph_conf=PATH)";
    return ceph_error(r);
  }
  // No client-side cache: the kernel's page cache is above vlunfs already (design decision 4),
  // and with it off a write that completes is on the OSDs, so fencing can lose nothing that a
  // flush had not yet been asked to keep.
  rados_conf_set(cluster_, "rbd_cache", "false");
  // An unreachable cluster is reported within seconds at open instead of after librados' 5
  // minutes; once connected, I/O waits for the cluster as long as it takes (writers block).
  rados_conf_set(cluster_, "client_mount_timeout", "20");
  if (int r = rados_connect(cluster_); r < 0) {
    *detail = "cannot connect to the Ceph cluster of " + client.conf_path + " as client." + client.id + ": " +
              std::strerror(-r) + " (are the monitors up, and is client." + client.id + "'s key in the keyring?)";
    return ceph_error(r);
  }
  if (int r = rados_ioctx_create(cluster_, pool.c_str(), &ioctx_); r < 0) {
    ioctx_ = nullptr;
    *detail = "cannot open the pool '" + pool + "': " + std::strerror(-r) +
              (r == -ENOENT ? " (create it: ceph osd pool create " + pool + "; rbd pool init " + pool + ")" : "");
    return ceph_error(r);
  }
  return {};
}

}  // namespace vlunfs::store
