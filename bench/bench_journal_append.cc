// The metadata journal: MetaStore::append (encode, CRC32C, apply to the namespace, queue) and
// append + wait_durable, the cost of one durable namespace change. On a memory store the flush is
// free, so what remains is the journal's own CPU cost; on an image file in $TMPDIR (default /tmp)
// every flush is an fdatasync, and several threads show what group commit shares.
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"
#include "vlunfs/store.h"

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace {

using namespace vlunfs;

constexpr uint64_t kDeviceBytes = uint64_t{8} << 30;  // sparse

struct Journal {
  std::unique_ptr<store::BlockStore> device;
  std::unique_ptr<meta::MetaStore> meta;
  std::mutex mu;  // the caller's lock around append(), as Filesystem::ns_mu_
  std::string path;
  ~Journal() {
    meta.reset();
    device.reset();
    if (!path.empty()) unlink(path.c_str());
  }
};

std::unique_ptr<Journal> make_journal(bool on_file) {
  auto j = std::make_unique<Journal>();
  if (on_file) {
    const char* tmp = std::getenv("TMPDIR");
    j->path = std::string(tmp ? tmp : "/tmp") + "/bench_journal_append." + std::to_string(getpid()) + ".img";
    store::FileStoreOptions fo;
    fo.create_size = kDeviceBytes;
    auto dev = store::open_file_store(j->path, fo);
    if (!dev) throw std::runtime_error("image: " + dev.error().message());
    j->device = std::move(dev).value();
  } else {
    j->device = store::make_memory_store(kDeviceBytes);
  }
  if (!meta::format(*j->device, {})) throw std::runtime_error("format failed");
  auto m = meta::MetaStore::open(*j->device, {});
  if (!m) throw std::runtime_error("open failed");
  j->meta = std::move(m).value();
  return j;
}

// A create and an unlink of the same name: the namespace stays the same size, as in a
// create+unlink loop. Thread t uses its own names.
void append_pair(Journal& j, int thread, uint64_t i, bool durable) {
  uint64_t seq;
  {
    std::lock_guard lock(j.mu);
    meta::CreateRecord c;
    c.parent = meta::ROOT_INO;
    c.name = "t" + std::to_string(thread) + "-" + std::to_string(i);
    c.ino = j.meta->ns().next_ino;
    c.mode = 0100644;
    auto s = j.meta->append(c);
    if (!s) throw std::runtime_error("append create: " + s.error().message());
    meta::UnlinkRecord u;
    u.parent = meta::ROOT_INO;
    u.name = c.name;
    if (!j.meta->append(u)) throw std::runtime_error("append unlink");
    meta::FreeRecord f{c.ino};
    auto s2 = j.meta->append(f);
    if (!s2) throw std::runtime_error("append free");
    seq = s2.value();
  }
  if (durable) {
    if (auto ec = j.meta->wait_durable(seq)) throw std::runtime_error("flush: " + ec.message());
  }
}

Journal* g_journal = nullptr;

void run(benchmark::State& state, bool on_file, bool durable) {
  // Thread 0 replaces the previous benchmark's journal (all its threads are done); no thread
  // enters the timed loop before every thread, thread 0 included, has reached it.
  if (state.thread_index() == 0) {
    delete g_journal;
    g_journal = make_journal(on_file).release();
  }
  uint64_t i = 0;
  for (auto _ : state) append_pair(*g_journal, state.thread_index(), i++, durable);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("item = create + unlink + free records");
}

void BM_AppendMemory(benchmark::State& state) { run(state, false, false); }
void BM_AppendDurableMemory(benchmark::State& state) { run(state, false, true); }
void BM_AppendDurableFile(benchmark::State& state) { run(state, true, true); }

BENCHMARK(BM_AppendMemory)->UseRealTime();
BENCHMARK(BM_AppendDurableMemory)->UseRealTime()->Threads(1)->Threads(4);
BENCHMARK(BM_AppendDurableFile)->UseRealTime()->Threads(1)->Threads(4)->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  delete g_journal;  // removes the image file
  benchmark::Shutdown();
  return 0;
}
