// The AFU backend a mount runs on. The program (the daemon, a tool, a test rig) chooses it and
// passes it to fs::Filesystem::start; client/ and fs/ only ever see an afu::Afu.
#pragma once

#include "vlunfs/afu.h"
#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <cstdint>
#include <functional>
#include <memory>

namespace vlunfs::client {

// An adapter with the flash LUN reachable on it, as SCSI discovery would find it.
struct AfuBackend {
  std::unique_ptr<afu::Afu> afu;
  uint64_t lun_id = 1;       // the LUN's id behind the adapter
  unsigned port_mask = 0x3;  // the FC ports it is visible on
};

// Makes the backend once the metadata has been read, because only then is the data region known:
// the part of the device that the AFU sees as the physical LUN (docs/format.md). The simulator
// serves that store; a hardware backend opens the adapter and ignores it.
using AfuFactory = std::function<Result<AfuBackend>(store::BlockStore& data_region)>;

}  // namespace vlunfs::client
