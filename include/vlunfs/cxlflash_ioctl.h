// The cxlflash superpipe ioctl structures (spec §3), field for field, so that the same struct can
// be handed to the kernel on CAPI hardware or to vlun::Driver in the simulator.
#pragma once

#include <linux/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace vlunfs {

inline constexpr uint16_t DK_CXLFLASH_VERSION_0 = 0;

struct dk_cxlflash_hdr {
  uint16_t version;      // must be DK_CXLFLASH_VERSION_0
  uint16_t rsvd[3];      // must be 0
  uint64_t flags;        // input
  uint64_t return_flags; // output; must be 0 on input (pitfall 6)
};
static_assert(sizeof(dk_cxlflash_hdr) == 24);

// Generic return flags
inline constexpr uint64_t DK_CXLFLASH_ALL_PORTS_ACTIVE = 0x1;
inline constexpr uint64_t DK_CXLFLASH_APP_CLOSE_ADAP_FD = 0x2;
inline constexpr uint64_t DK_CXLFLASH_CONTEXT_SQ_CMD_MODE = 0x4;
// Ioctl-specific flags
inline constexpr uint64_t DK_CXLFLASH_ATTACH_REUSE_CONTEXT = 0x8000000000000000ULL;
inline constexpr uint64_t DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME = 0x8000000000000000ULL;
inline constexpr uint64_t DK_CXLFLASH_VERIFY_HINT_SENSE = 0x8000000000000000ULL;
inline constexpr uint64_t DK_CXLFLASH_RECOVER_AFU_CONTEXT_RESET = 0x8000000000000000ULL;
inline constexpr uint64_t DK_CXLFLASH_MANAGE_LUN_ENABLE_SUPERPIPE = 0x8000000000000000ULL;
inline constexpr uint64_t DK_CXLFLASH_MANAGE_LUN_DISABLE_SUPERPIPE = 0x4000000000000000ULL;
inline constexpr uint64_t DK_CXLFLASH_MANAGE_LUN_ALL_PORTS_ACCESSIBLE = 0x2000000000000000ULL;

inline constexpr unsigned DK_CXLFLASH_VERIFY_SENSE_LEN = 18;
inline constexpr unsigned CXLFLASH_WWID_LEN = 16;

struct dk_cxlflash_attach {
  dk_cxlflash_hdr hdr;
  uint64_t num_interrupts;
  uint64_t context_id;
  uint64_t mmio_size;
  uint64_t block_size;
  uint64_t adap_fd;
  uint64_t last_lba;
  uint64_t max_xfer;
  uint64_t reserved[8];
};
struct dk_cxlflash_udirect {
  dk_cxlflash_hdr hdr;
  uint64_t context_id;
  uint64_t rsrc_handle;
  uint64_t last_lba;
  uint64_t reserved[8];
};
struct dk_cxlflash_uvirtual {
  dk_cxlflash_hdr hdr;
  uint64_t context_id;
  uint64_t lun_size;
  uint64_t rsrc_handle;
  uint64_t last_lba;
  uint64_t reserved[8];
};
struct dk_cxlflash_release {
  dk_cxlflash_hdr hdr;
  uint64_t context_id;
  uint64_t rsrc_handle;
  uint64_t reserved[8];
};
struct dk_cxlflash_resize {
  dk_cxlflash_hdr hdr;
  uint64_t context_id;
  uint64_t rsrc_handle;
  uint64_t req_size;
  uint64_t last_lba;
  uint64_t reserved[8];
};
struct dk_cxlflash_clone {
  dk_cxlflash_hdr hdr;
  uint64_t context_id_src;
  uint64_t context_id_dst;
  uint64_t adap_fd_src;
  uint64_t reserved[8];
};
struct dk_cxlflash_detach {
  dk_cxlflash_hdr hdr;
  uint64_t context_id;
  uint64_t reserved[8];
};
struct dk_cxlflash_verify {
  dk_cxlflash_hdr hdr;
  uint64_t context_id;
  uint64_t rsrc_handle;
  uint64_t hint;
  uint64_t last_lba;
  uint8_t sense_data[DK_CXLFLASH_VERIFY_SENSE_LEN];
  uint8_t pad[6];
  uint64_t reserved[8];
};
struct dk_cxlflash_recover_afu {
  dk_cxlflash_hdr hdr;
  uint64_t reason;
  uint64_t context_id;
  uint64_t mmio_size;
  uint64_t adap_fd;
  uint64_t reserved[8];
};
struct dk_cxlflash_manage_lun {
  dk_cxlflash_hdr hdr;
  uint8_t wwid[CXLFLASH_WWID_LEN];
  uint64_t reserved[8];
};

static_assert(sizeof(dk_cxlflash_attach) == 144);
static_assert(sizeof(dk_cxlflash_udirect) == 112);
static_assert(sizeof(dk_cxlflash_release) == 104);
static_assert(sizeof(dk_cxlflash_detach) == 96);
static_assert(sizeof(dk_cxlflash_verify) == 144);
static_assert(offsetof(dk_cxlflash_verify, sense_data) == 56);
static_assert(sizeof(dk_cxlflash_recover_afu) == 120);
static_assert(sizeof(dk_cxlflash_manage_lun) == 104);
static_assert(sizeof(dk_cxlflash_uvirtual) == 120);
static_assert(offsetof(dk_cxlflash_uvirtual, last_lba) == 48);
static_assert(sizeof(dk_cxlflash_resize) == 120);
static_assert(sizeof(dk_cxlflash_clone) == 112);

#define VLUNFS_CXL_IOWR(nr, type) _IOWR(0xCA, nr, type)
inline constexpr unsigned long DK_CXLFLASH_ATTACH = VLUNFS_CXL_IOWR(0x80, dk_cxlflash_attach);
inline constexpr unsigned long DK_CXLFLASH_USER_DIRECT = VLUNFS_CXL_IOWR(0x81, dk_cxlflash_udirect);
inline constexpr unsigned long DK_CXLFLASH_RELEASE = VLUNFS_CXL_IOWR(0x82, dk_cxlflash_release);
inline constexpr unsigned long DK_CXLFLASH_DETACH = VLUNFS_CXL_IOWR(0x83, dk_cxlflash_detach);
inline constexpr unsigned long DK_CXLFLASH_VERIFY = VLUNFS_CXL_IOWR(0x84, dk_cxlflash_verify);
inline constexpr unsigned long DK_CXLFLASH_RECOVER_AFU = VLUNFS_CXL_IOWR(0x85, dk_cxlflash_recover_afu);
inline constexpr unsigned long DK_CXLFLASH_MANAGE_LUN = VLUNFS_CXL_IOWR(0x86, dk_cxlflash_manage_lun);
inline constexpr unsigned long DK_CXLFLASH_USER_VIRTUAL = VLUNFS_CXL_IOWR(0x87, dk_cxlflash_uvirtual);
inline constexpr unsigned long DK_CXLFLASH_VLUN_RESIZE = VLUNFS_CXL_IOWR(0x88, dk_cxlflash_resize);
inline constexpr unsigned long DK_CXLFLASH_VLUN_CLONE = VLUNFS_CXL_IOWR(0x89, dk_cxlflash_clone);
#undef VLUNFS_CXL_IOWR
static_assert(DK_CXLFLASH_ATTACH == 0xC090CA80UL);
static_assert(DK_CXLFLASH_USER_DIRECT == 0xC070CA81UL);
static_assert(DK_CXLFLASH_RELEASE == 0xC068CA82UL);
static_assert(DK_CXLFLASH_DETACH == 0xC060CA83UL);
static_assert(DK_CXLFLASH_VERIFY == 0xC090CA84UL);
static_assert(DK_CXLFLASH_RECOVER_AFU == 0xC078CA85UL);
static_assert(DK_CXLFLASH_MANAGE_LUN == 0xC068CA86UL);
static_assert(DK_CXLFLASH_USER_VIRTUAL == 0xC078CA87UL);
static_assert(DK_CXLFLASH_VLUN_RESIZE == 0xC078CA88UL);
static_assert(DK_CXLFLASH_VLUN_CLONE == 0xC070CA89UL);

}  // namespace vlunfs
