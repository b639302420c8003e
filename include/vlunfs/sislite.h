// SISLite: the command interface of the IBM CAPI flash AFU (spec §4). Names follow the kernel's
// sislite.h so that the spec, the driver and this code read alike. All words are in host byte
// order except SCSI CDBs (big-endian); MMIO register values are passed in host order here, the
// backend does the big-endian access.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vlunfs::sisl {

// ---- IOARCB request flags (spec §4.2) ----
inline constexpr uint16_t SISL_REQ_FLAGS_RES_HNDL = 0x8000;
inline constexpr uint16_t SISL_REQ_FLAGS_PORT_LUN_ID = 0x0000;
inline constexpr uint16_t SISL_REQ_FLAGS_SUP_UNDERRUN = 0x4000;
inline constexpr uint16_t SISL_REQ_FLAGS_TIMEOUT_SECS = 0x0000;
inline constexpr uint16_t SISL_REQ_FLAGS_TIMEOUT_MSECS = 0x0040;
inline constexpr uint16_t SISL_REQ_FLAGS_TIMEOUT_USECS = 0x0080;
inline constexpr uint16_t SISL_REQ_FLAGS_TIMEOUT_CYCLES = 0x00C0;
inline constexpr uint16_t SISL_REQ_FLAGS_TMF_CMD = 0x0004;
inline constexpr uint16_t SISL_REQ_FLAGS_AFU_CMD = 0x0002;
inline constexpr uint16_t SISL_REQ_FLAGS_HOST_WRITE = 0x0001;
inline constexpr uint16_t SISL_REQ_FLAGS_HOST_READ = 0x0000;

// ---- IOARCB (64 bytes, spec §4.1) ----
struct alignas(16) sisl_ioarcb {
  uint16_t ctx_id;
  uint16_t req_flags;
  uint32_t res_hndl;  // or port_sel in LUN-id mode
  uint64_t lun_id;
  uint32_t data_len;
  uint32_t ioadl_len;
  uint64_t data_ea;
  uint8_t msi;
  uint8_t rrq;
  uint16_t timeout;
  uint32_t rsvd1;
  uint8_t cdb[16];
  uint64_t reserved;  // IOARRIN mode: reserved; SQ mode: IOASA EA
};
static_assert(sizeof(sisl_ioarcb) == 64);
static_assert(offsetof(sisl_ioarcb, req_flags) == 2);
static_assert(offsetof(sisl_ioarcb, res_hndl) == 4);
static_assert(offsetof(sisl_ioarcb, lun_id) == 8);
static_assert(offsetof(sisl_ioarcb, data_len) == 16);
static_assert(offsetof(sisl_ioarcb, ioadl_len) == 20);
static_assert(offsetof(sisl_ioarcb, data_ea) == 24);
static_assert(offsetof(sisl_ioarcb, msi) == 32);
static_assert(offsetof(sisl_ioarcb, rrq) == 33);
static_assert(offsetof(sisl_ioarcb, timeout) == 34);
static_assert(offsetof(sisl_ioarcb, cdb) == 40);
static_assert(offsetof(sisl_ioarcb, reserved) == 56);

// ---- IOASA (64 bytes, spec §4.3) ----
struct sisl_rc {
  uint8_t flags;
  uint8_t afu_rc;
  uint8_t scsi_rc;
  uint8_t fc_rc;
};

inline constexpr uint8_t SISL_RC_FLAGS_SENSE_VALID = 0x80;
inline constexpr uint8_t SISL_RC_FLAGS_FCP_RSP_CODE_VALID = 0x40;
inline constexpr uint8_t SISL_RC_FLAGS_OVERRUN = 0x20;
inline constexpr uint8_t SISL_RC_FLAGS_UNDERRUN = 0x10;

inline constexpr unsigned SISL_SENSE_DATA_LEN = 20;

struct alignas(16) sisl_ioasa {
  union {
    sisl_rc rc;
    uint32_t ioasc;  // pitfall 24: four bytes in host order; test bytes or != 0, never constants
  };
  union {
    uint32_t resid;
    uint32_t lunid_hi;
  };
  uint8_t port;
  uint8_t afu_extra;
  uint8_t scsi_extra;
  uint8_t fc_extra;
  uint8_t sense_data[SISL_SENSE_DATA_LEN];
  uint64_t host_use[4];
};
static_assert(sizeof(sisl_ioasa) == 64);
static_assert(offsetof(sisl_ioasa, resid) == 4);
static_assert(offsetof(sisl_ioasa, port) == 8);
static_assert(offsetof(sisl_ioasa, afu_extra) == 9);
static_assert(offsetof(sisl_ioasa, sense_data) == 12);
static_assert(offsetof(sisl_ioasa, host_use) == 32);

inline constexpr uint32_t SISL_IOASC_GOOD_COMPLETION = 0;

// afu_rc (spec §4.3)
inline constexpr uint8_t SISL_AFU_RC_RHT_INVALID = 0x01;
inline constexpr uint8_t SISL_AFU_RC_RHT_UNALIGNED = 0x02;
inline constexpr uint8_t SISL_AFU_RC_RHT_OUT_OF_BOUNDS = 0x03;
inline constexpr uint8_t SISL_AFU_RC_RHT_DMA_ERR = 0x04;
inline constexpr uint8_t SISL_AFU_RC_RHT_RW_PERM = 0x05;
inline constexpr uint8_t SISL_AFU_RC_LXT_UNALIGNED = 0x12;
inline constexpr uint8_t SISL_AFU_RC_LXT_OUT_OF_BOUNDS = 0x13;
inline constexpr uint8_t SISL_AFU_RC_LXT_DMA_ERR = 0x14;
inline constexpr uint8_t SISL_AFU_RC_LXT_RW_PERM = 0x15;
inline constexpr uint8_t SISL_AFU_RC_NOT_XLATE_HOST = 0x1A;
inline constexpr uint8_t SISL_AFU_RC_NO_CHANNELS = 0x20;
inline constexpr uint8_t SISL_AFU_RC_CAP_VIOLATION = 0x21;
inline constexpr uint8_t SISL_AFU_RC_OUT_OF_DATA_BUFS = 0x30;
inline constexpr uint8_t SISL_AFU_RC_DATA_DMA_ERR = 0x31;
inline constexpr uint8_t SISL_AFU_RC_TIMED_OUT_PRE_FC = 0x50;
inline constexpr uint8_t SISL_AFU_RC_TIMED_OUT = 0x51;

inline constexpr uint8_t SISL_AFU_EXTRA_PAGE_IN_WAIT = 0x0A;
inline constexpr uint8_t SISL_AFU_EXTRA_INVALID_EA = 0x0B;

// scsi_rc: the SCSI status byte
inline constexpr uint8_t SISL_SCSI_RC_CHECK = 0x02;
inline constexpr uint8_t SISL_SCSI_RC_BUSY = 0x08;

// fc_rc
inline constexpr uint8_t SISL_FC_RC_ABORTPEND = 0x52;
inline constexpr uint8_t SISL_FC_RC_WRABORTPEND = 0x53;
inline constexpr uint8_t SISL_FC_RC_NOLOGI = 0x54;
inline constexpr uint8_t SISL_FC_RC_NOEXP = 0x55;
inline constexpr uint8_t SISL_FC_RC_INUSE = 0x56;
inline constexpr uint8_t SISL_FC_RC_LINKDOWN = 0x57;
inline constexpr uint8_t SISL_FC_RC_ABORTOK = 0x58;
inline constexpr uint8_t SISL_FC_RC_ABORTFAIL = 0x59;
inline constexpr uint8_t SISL_FC_RC_RESID = 0x5A;
inline constexpr uint8_t SISL_FC_RC_RESIDERR = 0x5B;
inline constexpr uint8_t SISL_FC_RC_TGTABORT = 0x5C;
inline constexpr uint8_t SISL_FC_RC_SHUTDOWN = 0x5E;

// ---- RHT entry (16 bytes, spec §4.4) ----
struct alignas(16) sisl_rht_entry {  // format 0: virtual
  uint64_t lxt_start;  // address of the LXT (an EA; here a pointer)
  uint32_t lxt_cnt;
  uint16_t rsvd;
  uint8_t fp;     // (format << 4) | perm
  uint8_t nmask;  // bits of the vLBA that are the offset in a chunk; != 0 means "in use"
};
struct alignas(16) sisl_rht_entry_f1 {  // format 1: direct
  uint64_t lun_id;
  uint8_t valid;
  uint8_t rsvd[5];
  uint8_t fp;
  uint8_t port_sel;
};
static_assert(sizeof(sisl_rht_entry) == 16);
static_assert(sizeof(sisl_rht_entry_f1) == 16);
static_assert(offsetof(sisl_rht_entry, lxt_cnt) == 8);
static_assert(offsetof(sisl_rht_entry, fp) == 14);
static_assert(offsetof(sisl_rht_entry, nmask) == 15);
static_assert(offsetof(sisl_rht_entry_f1, valid) == 8);
static_assert(offsetof(sisl_rht_entry_f1, fp) == 14);
static_assert(offsetof(sisl_rht_entry_f1, port_sel) == 15);

inline constexpr uint8_t SISL_RHT_PERM_READ = 0x1;
inline constexpr uint8_t SISL_RHT_PERM_WRITE = 0x2;
inline constexpr uint8_t SISL_RHT_PERM_RW = 0x3;
inline constexpr uint8_t SISL_RHT_FMT_VIRTUAL = 0;
inline constexpr uint8_t SISL_RHT_FMT_DIRECT = 1;
inline constexpr uint8_t SISL_RHT_VALID = 0x80;
constexpr uint8_t SISL_RHT_FP(uint8_t fmt, uint8_t perm) { return static_cast<uint8_t>((fmt << 4) | perm); }
constexpr uint8_t SISL_RHT_FP_CLONE(uint8_t src_fp, uint8_t dst_perm) {
  return static_cast<uint8_t>(src_fp & (0xFC | dst_perm));
}
constexpr uint8_t rht_format(uint8_t fp) { return fp >> 4; }
constexpr uint8_t rht_perm(uint8_t fp) { return fp & 0x3; }

// ---- LXT entry (u64, spec §4.5) ----
using sisl_lxt_entry = uint64_t;
inline constexpr unsigned LXT_LUNIDX_SHIFT = 8;
inline constexpr unsigned LXT_PERM_SHIFT = 4;
inline constexpr uint64_t LXT_PERM_READ = uint64_t{1} << 4;
inline constexpr uint64_t LXT_PERM_WRITE = uint64_t{1} << 5;
inline constexpr uint64_t LXT_PORT_MASK = 0xF;
inline constexpr uint64_t LXT_BASE_MASK = ~uint64_t{0xFFFF};

// The base field (v-bits 63..16) holds the chunk number shifted by 16, as the driver writes it
// (`aun << 16`). Physical LBA = (aun << nmask) | (vLBA & (2^nmask - 1)), which is the hardware's
// `(entry & ~0xFFFF) | (vLBA & 0xFFFF)` for nmask 16. Chunks smaller than 2^16 blocks (nmask < 16)
// exist only in the simulator (beyond the hardware); the same field then still holds the chunk
// number, so the entry layout never changes.
inline constexpr unsigned LXT_BASE_SHIFT = 16;
constexpr sisl_lxt_entry make_lxt_entry(uint64_t aun, unsigned lun_index, uint64_t perm_bits,
                                        unsigned port_sel) {
  return (aun << LXT_BASE_SHIFT) | (uint64_t{lun_index} << LXT_LUNIDX_SHIFT) | perm_bits |
         (port_sel & LXT_PORT_MASK);
}
constexpr uint64_t lxt_aun(sisl_lxt_entry e) { return e >> LXT_BASE_SHIFT; }
constexpr unsigned lxt_lun_index(sisl_lxt_entry e) { return (e >> LXT_LUNIDX_SHIFT) & 0xFF; }
constexpr unsigned lxt_ports(sisl_lxt_entry e) { return e & LXT_PORT_MASK; }

// ---- Per-context user MMIO (sisl_host_map offsets, spec §4.6) ----
inline constexpr uint32_t SISL_HOST_ENDIAN_CTRL = 0x00;
inline constexpr uint32_t SISL_HOST_INTR_STATUS = 0x08;
inline constexpr uint32_t SISL_HOST_INTR_CLEAR = 0x10;
inline constexpr uint32_t SISL_HOST_INTR_MASK = 0x18;
inline constexpr uint32_t SISL_HOST_IOARRIN = 0x20;
inline constexpr uint32_t SISL_HOST_RRQ_START = 0x28;
inline constexpr uint32_t SISL_HOST_RRQ_END = 0x30;
inline constexpr uint32_t SISL_HOST_CMD_ROOM = 0x38;
inline constexpr uint32_t SISL_HOST_CTX_CTRL = 0x40;
inline constexpr uint32_t SISL_HOST_MBOX_W = 0x48;
// SQ mode (spec §4.6, §4.7): a host-memory ring of 64-byte IOARCB slots, bounds inclusive (start
// written before end), the host advancing sq_tail to the slot after its last queued IOARCB.
inline constexpr uint32_t SISL_HOST_SQ_START = 0x50;
inline constexpr uint32_t SISL_HOST_SQ_END = 0x58;
inline constexpr uint32_t SISL_HOST_SQ_HEAD = 0x60;  // read-only: the next slot the AFU fetches
inline constexpr uint32_t SISL_HOST_SQ_TAIL = 0x68;
inline constexpr uint32_t SISL_HOST_SQ_CTX_RESET = 0x70;  // write 1; reads back v-bit 0 clear when done
inline constexpr uint32_t SISL_HOST_MMIO_SIZE = 0x10000;

inline constexpr uint64_t SISL_ISTATUS_CMDROOM_OVERRUN = 0x10;
inline constexpr uint64_t SISL_ISTATUS_IOARCB_READ_FAULT = 0x08;
inline constexpr uint64_t SISL_ISTATUS_IOASA_WRITE_FAULT = 0x04;
inline constexpr uint64_t SISL_ISTATUS_RRQ_WRITE_FAULT = 0x02;
inline constexpr uint64_t SISL_ISTATUS_PAGE_IN_WAIT = 0x01;
inline constexpr uint64_t SISL_IOARRIN_CTX_RST = 0x1;  // writing 1 to IOARRIN resets the context

inline constexpr uint64_t SISL_RESP_HANDLE_T_BIT = 0x1;  // RRQ toggle bit (pitfall 23: starts at 1)

// ---- Per-context control MMIO (sisl_ctrl_map, spec §4.6) ----
inline constexpr uint32_t SISL_CTRL_RHT_START = 0x00;
inline constexpr uint32_t SISL_CTRL_RHT_CNT_ID = 0x08;
inline constexpr uint32_t SISL_CTRL_CTX_CAP = 0x10;
inline constexpr uint32_t SISL_CTRL_MBOX_R = 0x18;

inline constexpr uint64_t SISL_CTX_CAP_PROXY_ISSUE = 0x8000000000000000ULL;
inline constexpr uint64_t SISL_CTX_CAP_REAL_MODE = 0x4000000000000000ULL;
inline constexpr uint64_t SISL_CTX_CAP_HOST_XLATE = 0x2000000000000000ULL;
inline constexpr uint64_t SISL_CTX_CAP_PROXY_TARGET = 0x1000000000000000ULL;
inline constexpr uint64_t SISL_CTX_CAP_AFU_CMD = 0x8;
inline constexpr uint64_t SISL_CTX_CAP_GSCSI_CMD = 0x4;
inline constexpr uint64_t SISL_CTX_CAP_WRITE_CMD = 0x2;
inline constexpr uint64_t SISL_CTX_CAP_READ_CMD = 0x1;

// ---- AFU commands (spec §4.8) ----
inline constexpr uint8_t SISL_AFU_CMD_SYNC = 0xC0;
inline constexpr uint8_t SISL_AFU_CMD_LUN_PROVISION = 0xD0;
inline constexpr uint8_t SISL_AFU_CMD_DEBUG = 0xE0;
inline constexpr uint8_t SISL_AFU_LW_SYNC = 0;
inline constexpr uint8_t SISL_AFU_HW_SYNC = 1;
inline constexpr uint8_t SISL_AFU_GSYNC = 2;

// ---- SCSI operation codes used here ----
inline constexpr uint8_t SCSI_TEST_UNIT_READY = 0x00;
inline constexpr uint8_t SCSI_SYNCHRONIZE_CACHE_10 = 0x35;
inline constexpr uint8_t SCSI_READ_16 = 0x88;
inline constexpr uint8_t SCSI_WRITE_16 = 0x8A;
inline constexpr uint8_t SCSI_SYNCHRONIZE_CACHE_16 = 0x91;
inline constexpr uint8_t SCSI_WRITE_SAME_16 = 0x93;
inline constexpr uint8_t SCSI_SERVICE_ACTION_IN_16 = 0x9E;
inline constexpr uint8_t SCSI_SAI_READ_CAPACITY_16 = 0x10;
inline constexpr uint8_t SCSI_WRITE_SAME_UNMAP = 0x08;  // byte 1 of WRITE SAME(16)

// Sense keys and additional sense codes the simulator reports / VERIFY interprets.
inline constexpr uint8_t SENSE_NO_SENSE = 0x0;
inline constexpr uint8_t SENSE_RECOVERED_ERROR = 0x1;
inline constexpr uint8_t SENSE_NOT_READY = 0x2;
inline constexpr uint8_t SENSE_MEDIUM_ERROR = 0x3;
inline constexpr uint8_t SENSE_ILLEGAL_REQUEST = 0x5;
inline constexpr uint8_t SENSE_UNIT_ATTENTION = 0x6;
inline constexpr uint8_t ASC_LBA_OUT_OF_RANGE = 0x21;
inline constexpr uint8_t ASC_INVALID_OPCODE = 0x20;

// CDB big-endian helpers.
inline void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void put_be32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void put_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline uint64_t get_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
inline uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint16_t get_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Fills a READ(16)/WRITE(16) CDB.
inline void build_rw16(uint8_t* cdb, bool write, uint64_t lba, uint32_t nblocks) {
  for (int i = 0; i < 16; ++i) cdb[i] = 0;
  cdb[0] = write ? SCSI_WRITE_16 : SCSI_READ_16;
  put_be64(cdb + 2, lba);
  put_be32(cdb + 10, nblocks);
}

}  // namespace vlunfs::sisl
