// The command path: READ(16)/WRITE(16) through the simulated AFU (afu::rw16 -> HostQueue ->
// SimAfu -> memory store) against plain copies into and out of the same store, so the AFU path's
// overhead can be read as a ratio; a 0-block READ(16) for the command cost without data; and
// VLUN_RESIZE of a 1 TiB vLUN in each direction.
//
// Every rate is over wall-clock time (UseRealTime), so the 2-thread numbers are the throughput of
// both threads together on the one HostQueue that a context has (what the filesystem uses).
#include "vlunfs/afu.h"
#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/store.h"
#include "vlunfs/vlun.h"

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace vlunfs;

constexpr uint64_t kLunId = 0x500507680100A001;
constexpr std::array<uint8_t, 16> kWwid = {0x60, 0x05, 0x07, 0x68, 0x01, 0x00, 0xA0, 0x01};
constexpr uint32_t kBlockSize = 4096;
constexpr uint64_t kStoreBytes = uint64_t{4} << 30;  // sparse: only the vLUN's bytes are paid for
constexpr uint64_t kVlunBytes = uint64_t{1} << 30;   // 4 chunks of 256 MiB (chunk_shift 16)
constexpr uint64_t kVlunBlocks = kVlunBytes / kBlockSize;
constexpr uint64_t kMaxTransfer = uint64_t{1} << 20;

[[noreturn]] void fail(const std::string& what, std::error_code ec = {}) {
  throw std::runtime_error(what + (ec ? ": " + ec.message() : std::string{}));
}

dk_cxlflash_hdr header(uint64_t flags = 0) {
  dk_cxlflash_hdr h{};
  h.version = DK_CXLFLASH_VERSION_0;
  h.flags = flags;
  return h;
}

// One physical LUN on a SimAfu, reached through the Driver API: a context attached read-write
// and one vLUN of `vlun_bytes` (0 allowed), as the filesystem holds them.
class VlunSetup {
 public:
  VlunSetup(uint64_t store_bytes, uint64_t vlun_bytes)
      : store_(store::make_memory_store(store_bytes, kBlockSize)), driver_(vlun::Driver::create(afu_).value()) {
    afu_.add_lun(kLunId, *store_, 0x3);
    lun_ = &driver_->add_lun(kLunId, kWwid, 0x3);

    dk_cxlflash_attach attach{};
    attach.hdr = header(O_RDWR);  // perms = (flags + 1) & 3 = read and write
    if (auto ec = driver_->attach(*lun_, attach)) fail("ATTACH", ec);
    context_id_ = attach.context_id;

    dk_cxlflash_uvirtual uvirtual{};
    uvirtual.hdr = header();
    uvirtual.context_id = context_id_;
    uvirtual.lun_size = vlun_bytes / vlun::CXLFLASH_BLOCK_SIZE;
    if (auto ec = driver_->user_virtual(*lun_, uvirtual)) fail("USER_VIRTUAL", ec);
    rsrc_handle_ = uvirtual.rsrc_handle;
    if (vlun::last_lba_to_bytes(uvirtual.last_lba) != vlun_bytes) fail("USER_VIRTUAL: short vLUN");

    afu::MmioWindow* mmio = driver_->mmio(context_id_);
    if (mmio == nullptr) fail("no MMIO window for the context");
    queue_ = std::make_unique<afu::HostQueue>(*mmio);
  }

  ~VlunSetup() {
    queue_.reset();  // the RRQ is unregistered before the context goes away
    dk_cxlflash_detach detach{};
    detach.hdr = header();
    detach.context_id = context_id_;
    (void)driver_->detach(*lun_, detach);
  }

  // VLUN_RESIZE to `bytes`; returns the size reached in bytes.
  uint64_t resize(uint64_t bytes) {
    dk_cxlflash_resize args{};
    args.hdr = header();
    args.context_id = context_id_;
    args.rsrc_handle = rsrc_handle_;
    args.req_size = bytes / vlun::CXLFLASH_BLOCK_SIZE;
    if (auto ec = driver_->vlun_resize(*lun_, args)) fail("VLUN_RESIZE", ec);
    return vlun::last_lba_to_bytes(args.last_lba);
  }

  std::vector<uint64_t> lxt() {
    auto entries = driver_->lxt(*lun_, context_id_, rsrc_handle_);
    if (!entries) fail("lxt", entries.error());
    return entries.value();
  }

  store::BlockStore& store() { return *store_; }
  afu::HostQueue& queue() { return *queue_; }
  uint16_t ctxid() const { return static_cast<uint16_t>(context_id_ & 0xFFFFFFFF); }
  uint32_t rsrc_handle() const { return static_cast<uint32_t>(rsrc_handle_); }

 private:
  std::unique_ptr<store::BlockStore> store_;
  afu::SimAfu afu_;
  std::unique_ptr<vlun::Driver> driver_;
  vlun::Lun* lun_ = nullptr;
  uint64_t context_id_ = 0;
  uint64_t rsrc_handle_ = 0;
  std::unique_ptr<afu::HostQueue> queue_;
};

// A data buffer as the AFU wants it: 16-byte aligned. Page-aligned (offset 0, the usual case),
// or `offset` bytes into a page, to show how much the copies care about where the buffer sits.
class IoBuffer {
 public:
  IoBuffer(size_t bytes, size_t offset)
      : base_(static_cast<std::byte*>(std::aligned_alloc(4096, bytes + 4096))), data_(base_ + offset) {
    if (base_ == nullptr) throw std::bad_alloc();
    std::memset(base_, 0xA5, bytes + 4096);
  }
  ~IoBuffer() { std::free(base_); }
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;
  std::byte* data() const { return data_; }

 private:
  std::byte* base_;
  std::byte* data_;
};

// The 1 GiB vLUN of the I/O benchmarks, written once in full so that every read hits allocated
// store pages, and the physical byte offset of each of its chunks for the store baseline.
struct IoFixture {
  IoFixture() : setup(kStoreBytes, kVlunBytes) {
    IoBuffer buffer(kMaxTransfer, 0);
    afu::Command cmd;
    const uint32_t nblocks = kMaxTransfer / kBlockSize;
    for (uint64_t vlba = 0; vlba < kVlunBlocks; vlba += nblocks) {
      afu::rw16(setup.queue(), cmd, setup.ctxid(), setup.rsrc_handle(), true, vlba, nblocks,
                kBlockSize, buffer.data());
      if (auto ec = afu::ioasa_to_error(cmd.sa)) fail("pre-write", ec);
    }
    for (uint64_t entry : setup.lxt()) {
      chunk_offset.push_back((sisl::lxt_aun(entry) << vlun::MC_CHUNK_SHIFT) * kBlockSize);
    }
  }

  // Where the AFU puts a vLBA: the baseline copies the very same bytes.
  uint64_t physical_offset(uint64_t vlba) const {
    constexpr uint64_t chunk_mask = (uint64_t{1} << vlun::MC_CHUNK_SHIFT) - 1;
    return chunk_offset[vlba >> vlun::MC_CHUNK_SHIFT] + (vlba & chunk_mask) * kBlockSize;
  }

  VlunSetup setup;
  std::vector<uint64_t> chunk_offset;
};

IoFixture& io_fixture() {
  static IoFixture fixture;  // built once, by whichever benchmark thread gets here first
  return fixture;
}

enum class Pattern { sequential, random };

// vLBAs of successive transfers of `nblocks`, aligned to the transfer size. Threads of one
// benchmark start in different halves (sequential) or with different seeds (random).
class VlbaStream {
 public:
  VlbaStream(Pattern pattern, uint32_t nblocks, int thread_index, int threads)
      : pattern_(pattern),
        nblocks_(nblocks),
        slots_(kVlunBlocks / nblocks),
        next_slot_(slots_ / static_cast<uint64_t>(threads) * static_cast<uint64_t>(thread_index)),
        rng_state_(0x243F6A8885A308D3 + static_cast<uint64_t>(thread_index)) {}

  uint64_t next() {
    uint64_t slot;
    if (pattern_ == Pattern::random) {
      slot = splitmix64() & (slots_ - 1);  // slots_ is a power of two
    } else {
      slot = next_slot_;
      if (++next_slot_ == slots_) next_slot_ = 0;
    }
    return slot * nblocks_;
  }

 private:
  uint64_t splitmix64() {
    uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
    return z ^ (z >> 31);
  }

  Pattern pattern_;
  uint64_t nblocks_;
  uint64_t slots_;
  uint64_t next_slot_;
  uint64_t rng_state_;
};

// One I/O benchmark case: direction, vLBA pattern, transfer size and where the buffer sits.
struct IoCase {
  bool write;
  Pattern pattern;
  uint32_t bytes;
  uint32_t buffer_offset = 0;
};

void report(benchmark::State& state, uint64_t bytes_per_op) {
  state.SetItemsProcessed(state.iterations());
  if (bytes_per_op > 0) state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes_per_op));
}

// READ(16) / WRITE(16) through the AFU. bytes == 0 is a 0-block READ(16): the whole command
// (doorbell, checks, RHT/LXT walk, IOASA, RRQ) without moving data.
void BM_AfuCommand(benchmark::State& state, IoCase io) {
  IoFixture& fixture = io_fixture();
  const uint32_t nblocks = io.bytes / kBlockSize;
  VlbaStream vlbas(io.pattern, nblocks == 0 ? 1 : nblocks, state.thread_index(), state.threads());
  IoBuffer buffer(io.bytes, io.buffer_offset);
  afu::Command cmd;  // one per thread; the HostQueue is shared by all of them
  afu::HostQueue& queue = fixture.setup.queue();
  const uint16_t ctxid = fixture.setup.ctxid();
  const uint32_t handle = fixture.setup.rsrc_handle();
  for (auto _ : state) {
    afu::rw16(queue, cmd, ctxid, handle, io.write, vlbas.next(), nblocks, kBlockSize, buffer.data());
    if (cmd.sa.ioasc != sisl::SISL_IOASC_GOOD_COMPLETION) {
      state.SkipWithError("command failed");
      break;
    }
  }
  benchmark::DoNotOptimize(buffer.data()[0]);
  report(state, io.bytes);
}

// The same transfers as plain store->read / store->write at the physical bytes the AFU would
// touch: the memcpy cost below the AFU path. With kFenced, each copy is followed by one locked
// RMW (a full fence on x86), as a completion must be ordered after its data: this shows how much
// of the AFU path's extra cost that ordering alone explains.
template <bool kFenced>
void store_copy(benchmark::State& state, IoCase io) {
  IoFixture& fixture = io_fixture();
  VlbaStream vlbas(io.pattern, io.bytes / kBlockSize, state.thread_index(), state.threads());
  IoBuffer buffer(io.bytes, io.buffer_offset);
  store::BlockStore& store = fixture.setup.store();
  std::atomic<uint64_t> completions{0};
  for (auto _ : state) {
    uint64_t offset = fixture.physical_offset(vlbas.next());
    std::error_code ec = io.write ? store.write(offset, {buffer.data(), io.bytes})
                                  : store.read(offset, {buffer.data(), io.bytes});
    if (kFenced) completions.fetch_add(1, std::memory_order_seq_cst);
    if (ec) {
      state.SkipWithError("store I/O failed");
      break;
    }
  }
  benchmark::DoNotOptimize(buffer.data()[0]);
  report(state, io.bytes);
}
void BM_StoreCopy(benchmark::State& state, IoCase io) { store_copy<false>(state, io); }
void BM_StoreCopyFenced(benchmark::State& state, IoCase io) { store_copy<true>(state, io); }

constexpr bool kRead = false;
constexpr bool kWrite = true;

// Each case through the AFU and as a plain store copy, on 1 and on 2 threads.
#define IO_BENCHMARKS(name, ...)                                                                 \
  BENCHMARK_CAPTURE(BM_AfuCommand, name, IoCase{__VA_ARGS__})->UseRealTime()->Threads(1)->Threads(2); \
  BENCHMARK_CAPTURE(BM_StoreCopy, name, IoCase{__VA_ARGS__})->UseRealTime()->Threads(1)->Threads(2)

IO_BENCHMARKS(read_4k_random, kRead, Pattern::random, 4096);
IO_BENCHMARKS(write_4k_random, kWrite, Pattern::random, 4096);
IO_BENCHMARKS(read_4k_seq, kRead, Pattern::sequential, 4096);
IO_BENCHMARKS(write_4k_seq, kWrite, Pattern::sequential, 4096);
IO_BENCHMARKS(read_64k_seq, kRead, Pattern::sequential, 64 << 10);
IO_BENCHMARKS(write_64k_seq, kWrite, Pattern::sequential, 64 << 10);
IO_BENCHMARKS(read_1m_seq, kRead, Pattern::sequential, 1 << 20);
IO_BENCHMARKS(write_1m_seq, kWrite, Pattern::sequential, 1 << 20);

// The command without data: what the AFU path costs on top of any copy.
BENCHMARK_CAPTURE(BM_AfuCommand, read_0_blocks_random, IoCase{kRead, Pattern::random, 0})
    ->UseRealTime()->Threads(1)->Threads(2);

// Diagnostics for the 4 KiB ratio (one thread): the store copy with a fence after each copy, and
// the page-aligned buffer against one 64 bytes into its page.
BENCHMARK_CAPTURE(BM_StoreCopyFenced, read_4k_random, IoCase{kRead, Pattern::random, 4096})->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreCopyFenced, write_4k_random, IoCase{kWrite, Pattern::random, 4096})->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreCopyFenced, read_4k_seq, IoCase{kRead, Pattern::sequential, 4096})->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreCopyFenced, write_4k_seq, IoCase{kWrite, Pattern::sequential, 4096})->UseRealTime();
BENCHMARK_CAPTURE(BM_AfuCommand, write_4k_seq_buffer_at_64, IoCase{kWrite, Pattern::sequential, 4096, 64})->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreCopy, write_4k_seq_buffer_at_64, IoCase{kWrite, Pattern::sequential, 4096, 64})->UseRealTime();
BENCHMARK_CAPTURE(BM_AfuCommand, read_4k_random_buffer_at_64, IoCase{kRead, Pattern::random, 4096, 64})->UseRealTime();
BENCHMARK_CAPTURE(BM_StoreCopy, read_4k_random_buffer_at_64, IoCase{kRead, Pattern::random, 4096, 64})->UseRealTime();

#undef IO_BENCHMARKS

// ---- VLUN_RESIZE: 0 <-> 1 TiB (4096 chunks of 256 MiB) on a 1 TiB sparse memory LUN ----

constexpr uint64_t kResizeLunBytes = uint64_t{1} << 40;

// The timed direction's wall-clock time is the iteration time (manual timing); the other
// direction runs untimed. "thread_cpu_us" is the same interval in this thread's CPU time, which a
// busy machine's preemptions do not inflate.
class ResizeTimer {
 public:
  void start() {
    wall_ = std::chrono::steady_clock::now();
    cpu_ = thread_cpu_seconds();
  }
  void stop(benchmark::State& state) {
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count());
    cpu_total_ += thread_cpu_seconds() - cpu_;
  }
  void report(benchmark::State& state) const {
    state.SetItemsProcessed(state.iterations());
    state.counters["thread_cpu_us"] =
        benchmark::Counter(cpu_total_ * 1e6, benchmark::Counter::kAvgIterations);
  }

 private:
  static double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }

  std::chrono::steady_clock::time_point wall_;
  double cpu_ = 0;
  double cpu_total_ = 0;
};

void BM_VlunResizeGrow(benchmark::State& state) {
  VlunSetup setup(kResizeLunBytes, 0);
  ResizeTimer timer;
  for (auto _ : state) {
    timer.start();
    uint64_t reached = setup.resize(kResizeLunBytes);
    timer.stop(state);
    if (reached != kResizeLunBytes) {
      state.SkipWithError("grow did not reach 1 TiB");
      break;
    }
    (void)setup.resize(0);
  }
  timer.report(state);
}

void BM_VlunResizeShrink(benchmark::State& state) {
  VlunSetup setup(kResizeLunBytes, 0);
  ResizeTimer timer;
  for (auto _ : state) {
    if (setup.resize(kResizeLunBytes) != kResizeLunBytes) {
      state.SkipWithError("grow did not reach 1 TiB");
      break;
    }
    timer.start();
    uint64_t reached = setup.resize(0);
    timer.stop(state);
    if (reached != 0) {
      state.SkipWithError("shrink did not reach 0");
      break;
    }
  }
  timer.report(state);
}

BENCHMARK(BM_VlunResizeGrow)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VlunResizeShrink)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
