// One connection to a Ceph cluster and one pool in it (librados), owned, for the RBD store and
// the lock tools. Shut down in reverse order of creation; nothing of it is shared across fork().
#pragma once

#include "store/rbd/rbd_store.h"

#include <rados/librados.h>

namespace vlunfs::store {

class RadosSession {
 public:
  RadosSession() = default;
  RadosSession(const RadosSession&) = delete;
  RadosSession& operator=(const RadosSession&) = delete;
  ~RadosSession();

  // Connects as client.ID with the conf's monitors and keyring, and opens the pool. On failure
  // *detail says which step failed and what to check.
  std::error_code connect(const CephClientOptions& client, const std::string& pool, std::string* detail);
  rados_ioctx_t pool() const { return ioctx_; }

 private:
  rados_t cluster_ = nullptr;
  rados_ioctx_t ioctx_ = nullptr;
};

// librados and librbd return -errno; as an error value.
inline std::error_code ceph_error(int r) { return errno_error(r < 0 ? -r : r); }

}  // namespace vlunfs::store
