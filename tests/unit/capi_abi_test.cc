// The backend's view of the kernel ABI, checked against the kernel's own uapi header where it has
// the definitions (misc/cxl.h: struct cxl_event) and against the ioctl encoding (spec §3.0) where
// it does not (the cxlflash header left the uapi with 6.15; vlunfs carries its own).
#include "vlunfs/cxlflash_ioctl.h"

#include <gtest/gtest.h>
#include <misc/cxl.h>

#include <cstddef>
#include <cstring>

namespace vlunfs {
namespace {

// What afu/capi/direct_lun.cc reads of an event and simulated_kernel.cc writes.
static_assert(sizeof(cxl_event_header) == 8);
static_assert(offsetof(cxl_event_header, type) == 0);
static_assert(offsetof(cxl_event_header, size) == 2);
static_assert(offsetof(cxl_event_header, process_element) == 4);
static_assert(sizeof(cxl_event_afu_interrupt) == 8);
static_assert(offsetof(cxl_event_afu_interrupt, irq) == 2);
static_assert(sizeof(cxl_event_data_storage) == 32);
static_assert(offsetof(cxl_event_data_storage, addr) == 8);
static_assert(sizeof(cxl_event_afu_error) == 16);
static_assert(offsetof(cxl_event_afu_error, error) == 8);
static_assert(offsetof(cxl_event, irq) == sizeof(cxl_event_header));
static_assert(CXL_EVENT_AFU_INTERRUPT == 1 && CXL_EVENT_DATA_STORAGE == 2 && CXL_EVENT_AFU_ERROR == 3);

TEST(CapiAbi, CxlEventLayoutIsTheKernels) {
  cxl_event e{};
  e.header.type = CXL_EVENT_AFU_INTERRUPT;
  e.header.size = sizeof(cxl_event_header) + sizeof(cxl_event_afu_interrupt);
  e.irq.irq = 2;  // SISL_MSI_RRQ_UPDATED
  const auto* raw = reinterpret_cast<const uint8_t*>(&e);
  uint16_t type, size, irq;
  std::memcpy(&type, raw + 0, 2);
  std::memcpy(&size, raw + 2, 2);
  std::memcpy(&irq, raw + 8 + 2, 2);
  EXPECT_EQ(type, 1);
  EXPECT_EQ(size, 16);
  EXPECT_EQ(irq, 2);
}

struct Ioctl {
  const char* name;
  unsigned long number;
  unsigned nr;
  size_t size;
};

class CxlflashIoctl : public testing::TestWithParam<Ioctl> {};

TEST_P(CxlflashIoctl, EncodesTypeNrSizeAndDirection) {
  const Ioctl& i = GetParam();
  EXPECT_EQ(_IOC_TYPE(i.number), 0xCAu) << i.name;
  EXPECT_EQ(_IOC_NR(i.number), i.nr) << i.name;
  EXPECT_EQ(_IOC_SIZE(i.number), i.size) << i.name;
  EXPECT_EQ(_IOC_DIR(i.number), unsigned{_IOC_READ | _IOC_WRITE}) << i.name;
}

INSTANTIATE_TEST_SUITE_P(
    Spec30, CxlflashIoctl,
    testing::Values(Ioctl{"attach", DK_CXLFLASH_ATTACH, 0x80, sizeof(dk_cxlflash_attach)},
                    Ioctl{"user_direct", DK_CXLFLASH_USER_DIRECT, 0x81, sizeof(dk_cxlflash_udirect)},
                    Ioctl{"release", DK_CXLFLASH_RELEASE, 0x82, sizeof(dk_cxlflash_release)},
                    Ioctl{"detach", DK_CXLFLASH_DETACH, 0x83, sizeof(dk_cxlflash_detach)},
                    Ioctl{"verify", DK_CXLFLASH_VERIFY, 0x84, sizeof(dk_cxlflash_verify)},
                    Ioctl{"recover_afu", DK_CXLFLASH_RECOVER_AFU, 0x85, sizeof(dk_cxlflash_recover_afu)},
                    Ioctl{"user_virtual", DK_CXLFLASH_USER_VIRTUAL, 0x87, sizeof(dk_cxlflash_uvirtual)},
                    Ioctl{"vlun_resize", DK_CXLFLASH_VLUN_RESIZE, 0x88, sizeof(dk_cxlflash_resize)},
                    Ioctl{"vlun_clone", DK_CXLFLASH_VLUN_CLONE, 0x89, sizeof(dk_cxlflash_clone)}),
    [](const testing::TestParamInfo<Ioctl>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vlunfs
