// What the host does with a finished command's IOASA (spec §4.3, §4.7): done, requeue, verify the
// LUN after a unit attention, or fail with an errno and a reason for the log.
#pragma once

#include "vlunfs/sislite.h"

#include <string>

namespace vlunfs::afu::capi {

enum class IoasaAction {
  done,      // good completion
  requeue,   // transient (link down, no channel, out of data buffers, page-in wait): post again
  verify,    // unit attention: DK_CXLFLASH_VERIFY with the sense data, then post again
  fail,      // errno below
};

struct IoasaVerdict {
  IoasaAction action = IoasaAction::done;
  int error = 0;          // errno for fail
  std::string reason;     // empty for done
};

IoasaVerdict classify_ioasa(const sisl::sisl_ioasa& sa);

}  // namespace vlunfs::afu::capi
