// Translation and the queue under two threads: a 0-block READ(16) (doorbell, the checks of spec
// §4.10 with the RHT/LXT walk, IOASA, RRQ) at random vLBAs over a 512 GiB vLUN, so the LXT walk
// touches 2048 entries, not the 4 of bench_command_path's 1 GiB vLUN. With two threads it runs
// either on one shared HostQueue (what the filesystem does: one AFU context per 4096 files) or on
// one context and HostQueue per thread, which says whether the shared RRQ lock is worth removing.
#include "vlunfs/afu.h"
#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/store.h"
#include "vlunfs/vlun.h"

#include <benchmark/benchmark.h>
#include <fcntl.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

using namespace vlunfs;

constexpr uint64_t kLunId = 0x500507680100A002;
constexpr std::array<uint8_t, 16> kWwid = {0x60, 0x05, 0x07, 0x68, 0x01, 0x00, 0xA0, 0x02};
constexpr uint32_t kBlockSize = 4096;
constexpr uint64_t kStoreBytes = uint64_t{1} << 40;  // sparse
constexpr uint64_t kVlunBytes = uint64_t{1} << 39;   // 2048 chunks per context, two contexts

[[noreturn]] void fail(const std::string& what, std::error_code ec = {}) {
  throw std::runtime_error(what + (ec ? ": " + ec.message() : std::string{}));
}

struct Context {
  uint64_t id = 0;
  uint64_t handle = 0;
  std::unique_ptr<afu::HostQueue> queue;
};

// Two contexts on one LUN, each with a 512 GiB vLUN and its own HostQueue.
class Rig {
 public:
  Rig() : store_(store::make_memory_store(kStoreBytes, kBlockSize)), driver_(vlun::Driver::create(afu_).value()) {
    afu_.add_lun(kLunId, *store_, 0x3);
    lun_ = &driver_->add_lun(kLunId, kWwid, 0x3);
    for (Context& c : contexts) {
      dk_cxlflash_attach attach{};
      attach.hdr.flags = O_RDWR;
      if (auto ec = driver_->attach(*lun_, attach)) fail("ATTACH", ec);
      c.id = attach.context_id;
      dk_cxlflash_uvirtual uv{};
      uv.context_id = c.id;
      uv.lun_size = kVlunBytes / vlun::CXLFLASH_BLOCK_SIZE;
      if (auto ec = driver_->user_virtual(*lun_, uv)) fail("USER_VIRTUAL", ec);
      c.handle = uv.rsrc_handle;
      c.queue = std::make_unique<afu::HostQueue>(*driver_->mmio(c.id));
    }
  }
  ~Rig() {
    for (Context& c : contexts) {
      c.queue.reset();
      dk_cxlflash_detach d{};
      d.context_id = c.id;
      (void)driver_->detach(*lun_, d);
    }
  }
  std::array<Context, 2> contexts;

 private:
  std::unique_ptr<store::BlockStore> store_;
  afu::SimAfu afu_;
  std::unique_ptr<vlun::Driver> driver_;
  vlun::Lun* lun_ = nullptr;
};

Rig& rig() {
  static Rig r;
  return r;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

void translate(benchmark::State& state, bool queue_per_thread) {
  Context& c = rig().contexts[queue_per_thread ? state.thread_index() % 2 : 0];
  afu::Command cmd;
  uint64_t rng = 0x243F6A8885A308D3 + static_cast<uint64_t>(state.thread_index());
  const uint64_t blocks = kVlunBytes / kBlockSize;
  for (auto _ : state) {
    afu::rw16(*c.queue, cmd, static_cast<uint16_t>(c.id & 0xFFFF), static_cast<uint32_t>(c.handle), false,
              splitmix64(rng) & (blocks - 1), 0, kBlockSize, nullptr);
    if (cmd.sa.ioasc != sisl::SISL_IOASC_GOOD_COMPLETION) {
      state.SkipWithError("command failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_TranslateSharedQueue(benchmark::State& state) { translate(state, false); }
void BM_TranslateQueuePerThread(benchmark::State& state) { translate(state, true); }

BENCHMARK(BM_TranslateSharedQueue)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_TranslateQueuePerThread)->UseRealTime()->Threads(2);

}  // namespace

BENCHMARK_MAIN();
