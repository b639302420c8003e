// The IOASA classes of spec §4.3 and the master's mapping of them (spec §4.7): LINKDOWN ->
// requeue, NO_CHANNELS -> no-connect (retryable), OUT_OF_DATA_BUFS -> retry, DMA page-in -> retry,
// everything else -> error. Sense data decides what a CHECK CONDITION means (spec §3.7).
#include "afu/capi/ioasa_policy.h"

#include <cerrno>
#include <cstdio>

namespace vlunfs::afu::capi {

using namespace vlunfs::sisl;

namespace {

std::string codes(const sisl_ioasa& sa) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "afu_rc 0x%02x afu_extra 0x%02x scsi_rc 0x%02x fc_rc 0x%02x", sa.rc.afu_rc,
                sa.afu_extra, sa.rc.scsi_rc, sa.rc.fc_rc);
  return buf;
}

IoasaVerdict fail(int error, const sisl_ioasa& sa, const char* what) {
  return {IoasaAction::fail, error, std::string(what) + " (" + codes(sa) + ")"};
}

IoasaVerdict retry(const sisl_ioasa& sa, const char* what) {
  return {IoasaAction::requeue, 0, std::string(what) + " (" + codes(sa) + ")"};
}

// Sense key of fixed (0x70/0x71) or descriptor (0x72/0x73) sense data; -1 when unparsable.
int sense_key(const sisl_ioasa& sa) {
  const uint8_t response = sa.sense_data[0] & 0x7F;
  if (response == 0x70 || response == 0x71) return sa.sense_data[2] & 0xF;
  if (response == 0x72 || response == 0x73) return sa.sense_data[1] & 0xF;
  return -1;
}

IoasaVerdict classify_afu_rc(const sisl_ioasa& sa) {
  switch (sa.rc.afu_rc) {
    case SISL_AFU_RC_RHT_INVALID: return fail(EINVAL, sa, "resource handle not valid in the RHT");
    case SISL_AFU_RC_RHT_UNALIGNED: return fail(EIO, sa, "RHT misaligned (driver fault)");
    case SISL_AFU_RC_RHT_OUT_OF_BOUNDS: return fail(EINVAL, sa, "resource handle beyond the RHT");
    case SISL_AFU_RC_RHT_RW_PERM: return fail(EACCES, sa, "the context lacks read or write permission");
    case SISL_AFU_RC_LXT_UNALIGNED: return fail(EIO, sa, "LXT misaligned (driver fault)");
    case SISL_AFU_RC_LXT_OUT_OF_BOUNDS: return fail(EINVAL, sa, "LBA beyond the vLUN");
    case SISL_AFU_RC_LXT_RW_PERM: return fail(EACCES, sa, "the chunk lacks read or write permission");
    case SISL_AFU_RC_RHT_DMA_ERR:
    case SISL_AFU_RC_LXT_DMA_ERR:
      if (sa.afu_extra == SISL_AFU_EXTRA_PAGE_IN_WAIT) return retry(sa, "translation table page-in wait");
      return fail(ENODEV, sa, "translation tables unreachable: the master context is gone");
    case SISL_AFU_RC_NOT_XLATE_HOST: return fail(ENODEV, sa, "the master context is gone");
    case SISL_AFU_RC_NO_CHANNELS: return retry(sa, "no usable FC port");
    case SISL_AFU_RC_CAP_VIOLATION: return fail(EPERM, sa, "command outside the context's capabilities");
    case SISL_AFU_RC_OUT_OF_DATA_BUFS: return retry(sa, "AFU out of data buffers");
    case SISL_AFU_RC_DATA_DMA_ERR:
      if (sa.afu_extra == SISL_AFU_EXTRA_PAGE_IN_WAIT) return retry(sa, "data buffer page-in wait");
      return fail(EFAULT, sa, "data buffer address invalid");
    case SISL_AFU_RC_TIMED_OUT_PRE_FC:
    case SISL_AFU_RC_TIMED_OUT:
      return fail(ETIMEDOUT, sa, "command timed out");
    default: return fail(EIO, sa, "unknown AFU status");
  }
}

IoasaVerdict classify_fc_rc(const sisl_ioasa& sa) {
  switch (sa.rc.fc_rc) {
    case SISL_FC_RC_LINKDOWN: return retry(sa, "FC link down");
    case SISL_FC_RC_NOLOGI:
    case SISL_FC_RC_NOEXP:
    case SISL_FC_RC_ABORTPEND:
    case SISL_FC_RC_WRABORTPEND:
    case SISL_FC_RC_ABORTOK:
      return retry(sa, "FC exchange lost or aborted");
    case SISL_FC_RC_RESID:
    case SISL_FC_RC_RESIDERR:
      return fail(EIO, sa, "short transfer");
    case SISL_FC_RC_SHUTDOWN: return fail(ENODEV, sa, "adapter shutting down");
    default: return fail(EIO, sa, "FC transport error");
  }
}

IoasaVerdict classify_scsi_rc(const sisl_ioasa& sa) {
  if (sa.rc.scsi_rc == SISL_SCSI_RC_BUSY) return retry(sa, "target busy");
  if (sa.rc.scsi_rc != SISL_SCSI_RC_CHECK) return fail(EIO, sa, "SCSI status");
  if (!(sa.rc.flags & SISL_RC_FLAGS_SENSE_VALID)) return fail(EIO, sa, "check condition without sense");
  switch (sense_key(sa)) {
    case 0x0:  // no sense
    case 0x1:  // recovered error
      return {IoasaAction::done, 0, {}};
    case 0x2: return retry(sa, "LUN not ready");
    case 0x6: return {IoasaAction::verify, 0, "unit attention (" + codes(sa) + ")"};
    case 0x3: return fail(EIO, sa, "medium error");
    case 0x5: return fail(EINVAL, sa, "illegal request (LBA out of range?)");
    case 0x7: return fail(EROFS, sa, "LUN write protected");
    default: return fail(EIO, sa, "check condition");
  }
}

}  // namespace

IoasaVerdict classify_ioasa(const sisl_ioasa& sa) {
  if (sa.ioasc == SISL_IOASC_GOOD_COMPLETION) {
    // An underrun is reported without SUP_UNDERRUN only as a flag: a short transfer is an error.
    if (sa.rc.flags & (SISL_RC_FLAGS_UNDERRUN | SISL_RC_FLAGS_OVERRUN)) return fail(EIO, sa, "short transfer");
    return {};
  }
  if (sa.rc.afu_rc != 0) return classify_afu_rc(sa);
  if (sa.rc.fc_rc != 0) return classify_fc_rc(sa);
  if (sa.rc.scsi_rc != 0) return classify_scsi_rc(sa);
  if (sa.rc.flags & (SISL_RC_FLAGS_UNDERRUN | SISL_RC_FLAGS_OVERRUN)) return fail(EIO, sa, "short transfer");
  return fail(EIO, sa, "unknown IOASA");
}

}  // namespace vlunfs::afu::capi
