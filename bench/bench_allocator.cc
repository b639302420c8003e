// The chunk allocator (spec §5.1-§5.3) alone: what a grow to 1 TiB (4096 chunks) and the shrink
// back cost in ba_alloc/ba_free, below the driver's locks and SYNCs (bench_command_path times
// VLUN_RESIZE as a whole).
#include "vlun/chunk_allocator.h"

#include <benchmark/benchmark.h>

#include <vector>

namespace {

using vlunfs::vlun::ChunkAllocator;

// Allocate `chunks` from an allocator of `total`, then free them all, in allocation order.
void BM_AllocThenFree(benchmark::State& state) {
  const uint64_t total = static_cast<uint64_t>(state.range(0));
  const uint64_t chunks = static_cast<uint64_t>(state.range(1));
  ChunkAllocator allocator(total);
  std::vector<uint64_t> got(chunks);
  for (auto _ : state) {
    for (uint64_t i = 0; i < chunks; ++i) got[i] = *allocator.alloc();
    for (uint64_t i = 0; i < chunks; ++i) allocator.free(got[i]);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(chunks));
  state.counters["ns_per_chunk_pair"] =
      benchmark::Counter(static_cast<double>(chunks), benchmark::Counter::kIsIterationInvariantRate |
                                                          benchmark::Counter::kInvert);
}

// A fragmented pool: every other chunk taken, so each ba_alloc scans further for a free bit.
void BM_AllocFragmented(benchmark::State& state) {
  const uint64_t total = static_cast<uint64_t>(state.range(0));
  ChunkAllocator allocator(total);
  std::vector<uint64_t> all;
  while (auto a = allocator.alloc()) all.push_back(*a);
  for (size_t i = 0; i < all.size(); i += 2) allocator.free(all[i]);
  const uint64_t chunks = allocator.space();
  std::vector<uint64_t> got(chunks);
  for (auto _ : state) {
    for (uint64_t i = 0; i < chunks; ++i) got[i] = *allocator.alloc();
    for (uint64_t i = 0; i < chunks; ++i) allocator.free(got[i]);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(chunks));
}

// 4096 chunks (1 TiB) out of pools of 4097 and of 64 Ki chunks (16 TiB).
BENCHMARK(BM_AllocThenFree)->Args({4097, 4096})->Args({65536, 4096});
BENCHMARK(BM_AllocFragmented)->Arg(8192);

}  // namespace

BENCHMARK_MAIN();
