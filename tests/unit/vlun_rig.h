// The vLUN layer on a simulated AFU over memory LUNs, with helpers that issue each ioctl with a
// valid header and block I/O through a context's own queue, as a user of the driver would.
#pragma once

#include "vlunfs/afu.h"
#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"
#include "vlunfs/vlun.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace vlunfs::vlun::testing {

using namespace vlunfs::sisl;

// Clone needs two processes: the parent owns the source context, its child the destination.
inline constexpr Caller kParent{100, 1};
inline constexpr Caller kChild{200, 100};
inline constexpr Caller kStranger{300, 1};

struct RigOptions {
  uint64_t chunks = 64;       // size of the first LUN in chunks
  uint64_t extra_blocks = 0;  // blocks after the last whole chunk
  uint32_t blk_len = 4096;
  DriverOptions driver{.chunk_shift = 4};  // 16-block chunks: beyond the hardware, for speed
  afu::SimAfuOptions afu{};
  unsigned ports = 0x3;
  bool superpipe = true;
  store::BlockStore* lun_store = nullptr;  // use this store for the first LUN instead of memory
};

class Rig {
 public:
  explicit Rig(RigOptions o = {})
      : options(o), afu(o.afu), driver_(Driver::create(afu, o.driver).value()), driver(*driver_) {
    lun = &add_lun(o.chunks, o.ports, o.superpipe, o.extra_blocks, o.lun_store);
  }
  ~Rig() {
    queues_.clear();
    for (int fd : fds_) close(fd);
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  uint64_t chunk_blocks() const { return uint64_t{1} << options.driver.chunk_shift; }
  // req_size (4K units) of a vLUN of `chunks` chunks.
  uint64_t req_size(uint64_t chunks) const { return chunks * chunk_blocks() * options.blk_len / 4096; }

  Lun& add_lun(uint64_t chunks, unsigned ports = 0x3, bool superpipe = true, uint64_t extra_blocks = 0,
               store::BlockStore* use_store = nullptr) {
    uint64_t id = 0x1000 + stores_.size();
    if (use_store == nullptr) {
      stores_.push_back(store::make_memory_store((chunks * chunk_blocks() + extra_blocks) * options.blk_len,
                                                 options.blk_len));
      use_store = stores_.back().get();
    } else {
      stores_.push_back(nullptr);
    }
    lun_stores_.push_back(use_store);
    afu.add_lun(id, *use_store, ports);
    std::array<uint8_t, 16> wwid{};
    wwid[0] = 0x60;
    wwid[15] = static_cast<uint8_t>(id);
    wwid[14] = static_cast<uint8_t>(id >> 8);
    return driver.add_lun(id, wwid, ports, superpipe);
  }
  store::BlockStore& store(size_t lun_number = 0) { return *lun_stores_.at(lun_number); }

  static dk_cxlflash_hdr hdr(uint64_t flags = 0) { return dk_cxlflash_hdr{0, {0, 0, 0}, flags, 0}; }

  // ---- ioctls with valid headers ----
  std::error_code attach(uint64_t* cookie, const Caller& who = kParent, uint64_t flags = O_RDWR,
                         Lun* on = nullptr, dk_cxlflash_attach* out = nullptr) {
    dk_cxlflash_attach a{};
    a.hdr = hdr(flags);
    a.context_id = *cookie;
    std::error_code ec = driver.attach(on ? *on : *lun, a, who);
    if (!ec) {
      *cookie = a.context_id;
      if (!(flags & DK_CXLFLASH_ATTACH_REUSE_CONTEXT)) fds_.push_back(static_cast<int>(a.adap_fd));
    }
    if (out) *out = a;
    return ec;
  }
  uint64_t attach_ok(const Caller& who = kParent, uint64_t flags = O_RDWR, Lun* on = nullptr) {
    uint64_t cookie = 0;
    EXPECT_FALSE(attach(&cookie, who, flags, on));
    return cookie;
  }
  std::error_code reuse(uint64_t cookie, Lun& on, const Caller& who = kParent) {
    return attach(&cookie, who, DK_CXLFLASH_ATTACH_REUSE_CONTEXT | O_RDWR, &on);
  }

  std::error_code create(uint64_t cookie, uint64_t chunks, uint64_t* handle, uint64_t* last_lba = nullptr,
                         const Caller& who = kParent, uint64_t flags = 0, Lun* on = nullptr) {
    dk_cxlflash_uvirtual a{};
    a.hdr = hdr(flags);
    a.context_id = cookie;
    a.lun_size = req_size(chunks);
    std::error_code ec = driver.user_virtual(on ? *on : *lun, a, who);
    if (!ec) {
      *handle = a.rsrc_handle;
      if (last_lba) *last_lba = a.last_lba;
    }
    return ec;
  }
  uint64_t create_ok(uint64_t cookie, uint64_t chunks, const Caller& who = kParent, uint64_t flags = 0,
                     Lun* on = nullptr) {
    uint64_t handle = ~uint64_t{0};
    EXPECT_FALSE(create(cookie, chunks, &handle, nullptr, who, flags, on));
    return handle;
  }

  std::error_code resize(uint64_t cookie, uint64_t handle, uint64_t chunks, uint64_t* last_lba = nullptr,
                         const Caller& who = kParent, Lun* on = nullptr) {
    dk_cxlflash_resize a{};
    a.hdr = hdr();
    a.context_id = cookie;
    a.rsrc_handle = handle;
    a.req_size = req_size(chunks);
    std::error_code ec = driver.vlun_resize(on ? *on : *lun, a, who);
    if (!ec && last_lba) *last_lba = a.last_lba;
    return ec;
  }
  // Size in chunks a vLUN reports through VERIFY.
  uint64_t size_chunks(uint64_t cookie, uint64_t handle, const Caller& who = kParent, Lun* on = nullptr) {
    dk_cxlflash_verify v{};
    v.hdr = hdr();
    v.context_id = cookie;
    v.rsrc_handle = handle;
    EXPECT_FALSE(driver.verify(on ? *on : *lun, v, who));
    return last_lba_to_bytes(v.last_lba) / (chunk_blocks() * options.blk_len);
  }

  std::error_code release(uint64_t cookie, uint64_t handle, const Caller& who = kParent, Lun* on = nullptr) {
    dk_cxlflash_release a{};
    a.hdr = hdr();
    a.context_id = cookie;
    a.rsrc_handle = handle;
    return driver.release(on ? *on : *lun, a, who);
  }

  std::error_code detach(uint64_t cookie, const Caller& who = kParent, Lun* on = nullptr) {
    forget_queue(cookie);
    dk_cxlflash_detach a{};
    a.hdr = hdr();
    a.context_id = cookie;
    return driver.detach(on ? *on : *lun, a, who);
  }

  std::error_code clone(uint64_t src, uint64_t dst, const Caller& who = kChild, Lun* on = nullptr) {
    dk_cxlflash_clone a{};
    a.hdr = hdr();
    a.context_id_src = src;
    a.context_id_dst = dst;
    a.adap_fd_src = 12345;  // ignored
    return driver.vlun_clone(on ? *on : *lun, a, who);
  }

  std::error_code direct(uint64_t cookie, uint64_t* handle, const Caller& who = kParent, Lun* on = nullptr) {
    dk_cxlflash_udirect a{};
    a.hdr = hdr();
    a.context_id = cookie;
    std::error_code ec = driver.user_direct(on ? *on : *lun, a, who);
    if (!ec) *handle = a.rsrc_handle;
    return ec;
  }

  // ---- block I/O through the context's own queue ----
  afu::HostQueue& queue(uint64_t cookie, const Caller& who = kParent) {
    std::lock_guard lock(queues_mu_);
    auto& q = queues_[cookie];
    if (!q) {
      afu::MmioWindow* mmio = driver.mmio(cookie, who);
      EXPECT_NE(mmio, nullptr);
      q = std::make_unique<afu::HostQueue>(*mmio, 64);
    }
    return *q;
  }
  void forget_queue(uint64_t cookie) {
    std::lock_guard lock(queues_mu_);
    queues_.erase(cookie);
  }
  sisl_ioasa io(uint64_t cookie, uint64_t handle, bool write, uint64_t vlba, uint32_t nblocks, void* data,
                const Caller& who = kParent) {
    afu::Command cmd;
    afu::rw16(queue(cookie, who), cmd, static_cast<uint16_t>(cookie & 0xFFFFFFFF), static_cast<uint32_t>(handle),
              write, vlba, nblocks, options.blk_len, data);
    return cmd.sa;
  }
  // Writes the block's pattern; true on success.
  bool write_block(uint64_t cookie, uint64_t handle, uint64_t vlba, uint64_t seed, const Caller& who = kParent) {
    auto data = block(seed);
    return io(cookie, handle, true, vlba, 1, data.data(), who).ioasc == 0;
  }
  // Reads one block; empty on failure.
  std::vector<std::byte> read_block(uint64_t cookie, uint64_t handle, uint64_t vlba, const Caller& who = kParent) {
    std::vector<std::byte> out(options.blk_len);
    if (io(cookie, handle, false, vlba, 1, out.data(), who).ioasc != 0) return {};
    return out;
  }
  std::vector<std::byte> block(uint64_t seed) const {
    std::vector<std::byte> out(options.blk_len);
    for (uint32_t w = 0; w < options.blk_len / 8; ++w) {
      uint64_t v = seed * 0x9E3779B97F4A7C15ULL + w;
      std::memcpy(out.data() + w * 8, &v, 8);
    }
    return out;
  }
  std::vector<std::byte> zeros() const { return std::vector<std::byte>(options.blk_len); }
  std::vector<std::byte> store_block(uint64_t plba, size_t lun_number = 0) {
    std::vector<std::byte> out(options.blk_len);
    EXPECT_FALSE(store(lun_number).read(plba * options.blk_len, out));
    return out;
  }

  // The chunk numbers (auns) of a vLUN, in vLUN order.
  std::vector<uint64_t> chunks_of(uint64_t cookie, uint64_t handle, const Caller& who = kParent, Lun* on = nullptr) {
    auto lxt = driver.lxt(on ? *on : *lun, cookie, handle, who);
    std::vector<uint64_t> auns;
    if (!lxt) {
      ADD_FAILURE() << "no LXT for handle " << handle;
      return auns;
    }
    for (uint64_t e : lxt.value()) auns.push_back(lxt_aun(e));
    return auns;
  }
  uint64_t free_chunks(const Lun* on = nullptr) { return driver.lun_info(on ? *on : static_cast<const Lun&>(*lun)).free_chunks; }

  RigOptions options;

 private:
  // Declared before the AFU and the driver: the LUNs outlive them (the driver's destructor still
  // releases handles, which may zero chunks).
  std::vector<std::unique_ptr<store::BlockStore>> stores_;
  std::vector<store::BlockStore*> lun_stores_;

 public:
  afu::SimAfu afu;

 private:
  std::unique_ptr<Driver> driver_;

 public:
  Driver& driver;
  Lun* lun = nullptr;

 private:
  std::mutex queues_mu_;
  std::map<uint64_t, std::unique_ptr<afu::HostQueue>> queues_;
  std::vector<int> fds_;
};

}  // namespace vlunfs::vlun::testing
