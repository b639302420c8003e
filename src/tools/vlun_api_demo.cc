// vlun-api-demo: the life cycle of a vLUN through the driver API, on a simulated AFU over a
// sparse flash image — what a program on CAPI hardware does with the cxlflash ioctls.
#include "tools/size_arg.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/store.h"
#include "vlunfs/vlun.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace vlunfs;

namespace {

void check(const char* what, std::error_code ec) {
  if (ec) {
    std::fprintf(stderr, "vlun-api-demo: %s failed: %s\n", what, ec.message().c_str());
    std::exit(1);
  }
}

std::string chunks_of(vlun::Driver& drv, vlun::Lun& lun, uint64_t ctx, uint64_t handle) {
  auto lxt = drv.lxt(lun, ctx, handle);
  std::string s;
  for (uint64_t e : lxt.value()) s += (s.empty() ? "" : ",") + std::to_string(sisl::lxt_aun(e));
  return s.empty() ? "-" : s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "vlun-api-demo.img";
  uint64_t size = 4ull << 30;
  store::FileStoreOptions fo;
  fo.create_size = size;
  ::unlink(path.c_str());
  auto dev = store::open_file_store(path, fo);
  if (!dev) {
    std::fprintf(stderr, "vlun-api-demo: %s: %s\n", path.c_str(), dev.error().message().c_str());
    return 1;
  }
  std::printf("simulated flash: %s, %s sparse image, 4 KiB blocks, 256 MiB chunks\n", path.c_str(),
              tools::human_size(size).c_str());
  afu::SimAfu afu;
  afu.add_lun(0x1000, *dev.value(), 0x3);
  auto driver = vlun::Driver::create(afu);
  if (!driver) {
    std::fprintf(stderr, "vlun-api-demo: cannot start the vLUN driver: %s\n", driver.error().message().c_str());
    return 1;
  }
  vlun::Driver& drv = *driver.value();
  vlun::Lun& lun = drv.add_lun(0x1000, {}, 0x3);

  dk_cxlflash_attach attach{};
  attach.hdr.flags = 2;  // O_RDWR
  check("DK_CXLFLASH_ATTACH", drv.attach(lun, attach));
  std::printf("ATTACH          context 0x%llx, block size %llu, last_lba %llu, max_xfer %llu blocks\n",
              (unsigned long long)attach.context_id, (unsigned long long)attach.block_size,
              (unsigned long long)attach.last_lba, (unsigned long long)attach.max_xfer);

  dk_cxlflash_uvirtual uv{};
  uv.hdr.flags = DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME;
  uv.context_id = attach.context_id;
  uv.lun_size = (1ull << 30) / 4096;  // 1 GiB in 4K units
  check("DK_CXLFLASH_USER_VIRTUAL", drv.user_virtual(lun, uv));
  std::printf("USER_VIRTUAL    handle %llu, last_lba %llu (4K units), chunks %s\n", (unsigned long long)uv.rsrc_handle,
              (unsigned long long)uv.last_lba, chunks_of(drv, lun, attach.context_id, uv.rsrc_handle).c_str());

  afu::HostQueue queue(*drv.mmio(attach.context_id), 64);
  afu::Command cmd;
  alignas(4096) static char out[1 << 20], in[1 << 20];
  for (size_t i = 0; i < sizeof out; ++i) out[i] = static_cast<char>(i * 31 + 7);
  uint16_t ctxid = static_cast<uint16_t>(attach.context_id & 0xFFFF);
  uint64_t vlba = (256ull << 20) / 4096 - 128;  // 1 MiB that crosses from chunk 0 into chunk 1
  afu::rw16(queue, cmd, ctxid, static_cast<uint32_t>(uv.rsrc_handle), true, vlba, 256, 4096, out);
  std::printf("WRITE(16)       vLBA %llu, 256 blocks: ioasc 0x%08x\n", (unsigned long long)vlba, cmd.sa.ioasc);
  afu::rw16(queue, cmd, ctxid, static_cast<uint32_t>(uv.rsrc_handle), false, vlba, 256, 4096, in);
  std::printf("READ(16)        vLBA %llu, 256 blocks: ioasc 0x%08x, data %s\n", (unsigned long long)vlba, cmd.sa.ioasc,
              std::memcmp(in, out, sizeof in) == 0 ? "matches" : "DIFFERS");
  afu::rw16(queue, cmd, ctxid, static_cast<uint32_t>(uv.rsrc_handle), false, 4 * 65536, 1, 4096, in);
  std::printf("READ(16)        past the vLUN's end: afu_rc 0x%02x (LXT_OUT_OF_BOUNDS)\n", cmd.sa.rc.afu_rc);

  dk_cxlflash_resize rs{};
  rs.context_id = attach.context_id;
  rs.rsrc_handle = uv.rsrc_handle;
  rs.req_size = (100ull << 30) / 4096;
  check("DK_CXLFLASH_VLUN_RESIZE", drv.vlun_resize(lun, rs));
  std::printf("VLUN_RESIZE     asked 100 GiB, got last_lba %llu: a grow is best effort (%s)\n",
              (unsigned long long)rs.last_lba, tools::human_size(vlun::last_lba_to_bytes(rs.last_lba)).c_str());
  rs.hdr.return_flags = 0;
  rs.req_size = (512ull << 20) / 4096;
  check("DK_CXLFLASH_VLUN_RESIZE", drv.vlun_resize(lun, rs));
  std::printf("VLUN_RESIZE     to 512 MiB: last_lba %llu, chunks %s, free chunks %llu\n", (unsigned long long)rs.last_lba,
              chunks_of(drv, lun, attach.context_id, uv.rsrc_handle).c_str(),
              (unsigned long long)drv.lun_info(lun).free_chunks);

  dk_cxlflash_release rel{};
  rel.context_id = attach.context_id;
  rel.rsrc_handle = uv.rsrc_handle;
  check("DK_CXLFLASH_RELEASE", drv.release(lun, rel));
  std::printf("RELEASE         chunks zeroed (write-same) and freed; last handle gone: LUN mode back to NONE, "
              "%d users, allocator destroyed (spec 5.1)\n", drv.lun_info(lun).users);
  dk_cxlflash_detach det{};
  det.context_id = attach.context_id;
  check("DK_CXLFLASH_DETACH", drv.detach(lun, det));
  close(static_cast<int>(attach.adap_fd));
  std::printf("DETACH          context gone\n");
  return 0;
}
