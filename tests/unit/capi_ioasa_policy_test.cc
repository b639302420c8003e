// Every IOASA class of spec §4.3 and what the host does with it (spec §4.7).
#include "afu/capi/ioasa_policy.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace vlunfs::afu::capi {
namespace {

using namespace vlunfs::sisl;

struct Case {
  const char* name;
  uint8_t afu_rc, afu_extra, scsi_rc, fc_rc, flags;
  uint8_t sense_key;  // fixed-format sense when flags has SENSE_VALID
  IoasaAction action;
  int error;
};

class IoasaClass : public testing::TestWithParam<Case> {};

TEST_P(IoasaClass, MapsToItsAction) {
  const Case& c = GetParam();
  sisl_ioasa sa{};
  sa.rc.afu_rc = c.afu_rc;
  sa.afu_extra = c.afu_extra;
  sa.rc.scsi_rc = c.scsi_rc;
  sa.rc.fc_rc = c.fc_rc;
  sa.rc.flags = c.flags;
  if (c.flags & SISL_RC_FLAGS_SENSE_VALID) {
    sa.sense_data[0] = 0x70;
    sa.sense_data[2] = c.sense_key;
  }
  IoasaVerdict v = classify_ioasa(sa);
  EXPECT_EQ(static_cast<int>(v.action), static_cast<int>(c.action)) << c.name;
  if (c.action == IoasaAction::fail) {
    EXPECT_EQ(v.error, c.error) << c.name;
  }
  if (c.action != IoasaAction::done) {
    EXPECT_FALSE(v.reason.empty()) << c.name;
  }
}

constexpr uint8_t SV = SISL_RC_FLAGS_SENSE_VALID;

INSTANTIATE_TEST_SUITE_P(
    Spec43, IoasaClass,
    testing::Values(
        Case{"good", 0, 0, 0, 0, 0, 0, IoasaAction::done, 0},
        Case{"rht_invalid", SISL_AFU_RC_RHT_INVALID, 0, 0, 0, 0, 0, IoasaAction::fail, EINVAL},
        Case{"rht_unaligned", SISL_AFU_RC_RHT_UNALIGNED, 0, 0, 0, 0, 0, IoasaAction::fail, EIO},
        Case{"rht_oob", SISL_AFU_RC_RHT_OUT_OF_BOUNDS, 0, 0, 0, 0, 0, IoasaAction::fail, EINVAL},
        Case{"rht_dma_pagein", SISL_AFU_RC_RHT_DMA_ERR, SISL_AFU_EXTRA_PAGE_IN_WAIT, 0, 0, 0, 0, IoasaAction::requeue, 0},
        Case{"rht_dma_bad_ea", SISL_AFU_RC_RHT_DMA_ERR, SISL_AFU_EXTRA_INVALID_EA, 0, 0, 0, 0, IoasaAction::fail, ENODEV},
        Case{"rht_perm", SISL_AFU_RC_RHT_RW_PERM, 0, 0, 0, 0, 0, IoasaAction::fail, EACCES},
        Case{"lxt_unaligned", SISL_AFU_RC_LXT_UNALIGNED, 0, 0, 0, 0, 0, IoasaAction::fail, EIO},
        Case{"lxt_oob", SISL_AFU_RC_LXT_OUT_OF_BOUNDS, 0, 0, 0, 0, 0, IoasaAction::fail, EINVAL},
        Case{"lxt_dma_pagein", SISL_AFU_RC_LXT_DMA_ERR, SISL_AFU_EXTRA_PAGE_IN_WAIT, 0, 0, 0, 0, IoasaAction::requeue, 0},
        Case{"lxt_perm", SISL_AFU_RC_LXT_RW_PERM, 0, 0, 0, 0, 0, IoasaAction::fail, EACCES},
        Case{"not_xlate_host", SISL_AFU_RC_NOT_XLATE_HOST, 0, 0, 0, 0, 0, IoasaAction::fail, ENODEV},
        Case{"no_channels", SISL_AFU_RC_NO_CHANNELS, 0x0C, 0, 0, 0, 0, IoasaAction::requeue, 0},
        Case{"cap_violation", SISL_AFU_RC_CAP_VIOLATION, 0, 0, 0, 0, 0, IoasaAction::fail, EPERM},
        Case{"out_of_data_bufs", SISL_AFU_RC_OUT_OF_DATA_BUFS, 0, 0, 0, 0, 0, IoasaAction::requeue, 0},
        Case{"data_dma_pagein", SISL_AFU_RC_DATA_DMA_ERR, SISL_AFU_EXTRA_PAGE_IN_WAIT, 0, 0, 0, 0, IoasaAction::requeue, 0},
        Case{"data_dma_bad_ea", SISL_AFU_RC_DATA_DMA_ERR, SISL_AFU_EXTRA_INVALID_EA, 0, 0, 0, 0, IoasaAction::fail, EFAULT},
        Case{"timed_out_pre_fc", SISL_AFU_RC_TIMED_OUT_PRE_FC, 0, 0, 0, 0, 0, IoasaAction::fail, ETIMEDOUT},
        Case{"timed_out", SISL_AFU_RC_TIMED_OUT, 0, 0, 0, 0, 0, IoasaAction::fail, ETIMEDOUT},
        Case{"unknown_afu_rc", 0x7F, 0, 0, 0, 0, 0, IoasaAction::fail, EIO},
        Case{"fc_linkdown", 0, 0, 0, SISL_FC_RC_LINKDOWN, 0, 0, IoasaAction::requeue, 0},
        Case{"fc_nologi", 0, 0, 0, SISL_FC_RC_NOLOGI, 0, 0, IoasaAction::requeue, 0},
        Case{"fc_abortpend", 0, 0, 0, SISL_FC_RC_ABORTPEND, 0, 0, IoasaAction::requeue, 0},
        Case{"fc_residerr", 0, 0, 0, SISL_FC_RC_RESIDERR, 0, 0, IoasaAction::fail, EIO},
        Case{"fc_shutdown", 0, 0, 0, SISL_FC_RC_SHUTDOWN, 0, 0, IoasaAction::fail, ENODEV},
        Case{"fc_tgtabort", 0, 0, 0, SISL_FC_RC_TGTABORT, 0, 0, IoasaAction::fail, EIO},
        Case{"scsi_busy", 0, 0, SISL_SCSI_RC_BUSY, 0, 0, 0, IoasaAction::requeue, 0},
        Case{"scsi_check_no_sense_data", 0, 0, SISL_SCSI_RC_CHECK, 0, 0, 0, IoasaAction::fail, EIO},
        Case{"scsi_unit_attention", 0, 0, SISL_SCSI_RC_CHECK, 0, SV, 0x6, IoasaAction::verify, 0},
        Case{"scsi_not_ready", 0, 0, SISL_SCSI_RC_CHECK, 0, SV, 0x2, IoasaAction::requeue, 0},
        Case{"scsi_recovered", 0, 0, SISL_SCSI_RC_CHECK, 0, SV, 0x1, IoasaAction::done, 0},
        Case{"scsi_medium_error", 0, 0, SISL_SCSI_RC_CHECK, 0, SV, 0x3, IoasaAction::fail, EIO},
        Case{"scsi_illegal_request", 0, 0, SISL_SCSI_RC_CHECK, 0, SV, 0x5, IoasaAction::fail, EINVAL},
        Case{"scsi_data_protect", 0, 0, SISL_SCSI_RC_CHECK, 0, SV, 0x7, IoasaAction::fail, EROFS},
        Case{"underrun_flag_only", 0, 0, 0, 0, SISL_RC_FLAGS_UNDERRUN, 0, IoasaAction::fail, EIO}),
    [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vlunfs::afu::capi
