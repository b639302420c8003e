// The simulated kernel (simulated_kernel.h). Each mapped window is an interposer in front of the
// software AFU's context registers: it forwards the registers, keeps the host's RRQ itself (the
// AFU posts into a shadow ring that is copied over, so completions can be injected, held back and
// reordered), and raises SISL_MSI_RRQ_UPDATED as a cxl_event on the adapter fd. In SQ mode the
// window is also the AFU's SQ front end: it fetches IOARCBs from the host's ring, runs each on a
// copy through the software AFU (which knows only IOARRIN), then writes the IOASA where the
// IOARCB's offset 56 points and posts that address to the RRQ (spec §4.7, pitfall 23).
#include "afu/capi/simulated_kernel.h"

#include "vlunfs/afu.h"
#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/vlun.h"

#include <linux/fs.h>
#include <misc/cxl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <vector>

namespace vlunfs::afu::capi {

using namespace vlunfs::sisl;

namespace {

constexpr uint64_t kLunId = 1;
constexpr unsigned kPorts = 0x3;

// A command fetched from an SQ, running as a copy whose IOASA follows it (as IOARRIN mode has it).
struct SqCommand {
  std::unique_ptr<Command> copy;
  uint64_t ioasa_ea = 0;  // where the host wants the IOASA (IOARCB offset 56)
};

struct Window {
  uint64_t cookie = 0;
  int adap_fd = -1;
  MmioWindow* afu = nullptr;   // the software AFU's user window of the context
  bool reset = false;          // adapter reset: reads all ones, stores dropped
  uint64_t host_rrq_start = 0, host_rrq_end = 0, host_cursor = 0, host_toggle = 1;
  std::vector<uint64_t> shadow;  // the ring the AFU really posts into
  size_t shadow_cursor = 0;
  uint64_t shadow_toggle = 1;
  uint64_t sq_start = 0, sq_end = 0, sq_head = 0, sq_tail = 0;  // SQ mode's ring and positions
  std::map<uint64_t, SqCommand> sq_running;                     // by the copy's IOARCB EA

  uint64_t sq_slots() const { return sq_end < sq_start || sq_start == 0 ? 0 : (sq_end - sq_start) / sizeof(sisl_ioarcb) + 1; }
  uint64_t sq_index(uint64_t ea) const { return (ea - sq_start) / sizeof(sisl_ioarcb); }
  // IOARCBs queued and not yet fetched.
  uint64_t sq_depth() const {
    const uint64_t n = sq_slots();
    return n == 0 ? 0 : (sq_index(sq_tail) + n - sq_index(sq_head)) % n;
  }
};

struct Fault {
  unsigned count = 0;
  sisl_rc rc{};
  uint8_t afu_extra = 0;
};

}  // namespace

struct SimulatedKernel::Impl {
  SimulatedKernelOptions options;
  std::unique_ptr<store::BlockStore> owned_store;
  store::BlockStore* store = nullptr;
  std::unique_ptr<SimAfu> afu;
  std::unique_ptr<vlun::Driver> driver;
  vlun::Lun* lun = nullptr;
  SimulatedKernelCounters counters;

  std::mutex mu;  // everything below
  std::condition_variable events_cv;
  std::set<int> disk_fds;
  std::map<int, std::deque<cxl_event>> events;  // per adapter fd
  std::map<void*, Window> windows;              // by mapping address
  std::set<uint64_t> awaiting_recovery;         // cookies reset by reset_adapter()
  std::map<int, uint64_t> adapter_cookie;       // adapter fd -> context cookie
  Fault fault;
  unsigned link_down = 0;
  bool unit_attention = false;
  unsigned cmd_room = 256;
  unsigned hold = 0;
  bool sq_stalled = false;
  std::vector<std::pair<Window*, uint64_t>> held;  // (window, RRQ entry without T) in arrival order

  void post(Window& w, uint64_t ea, uint8_t msi) {
    if (w.host_rrq_start == 0) return;  // no RRQ programmed: the AFU has nowhere to post
    if (hold > 0) {
      held.emplace_back(&w, ea);
      if (held.size() < hold) return;
      hold = 0;
      auto out = std::move(held);
      held.clear();
      for (auto it = out.rbegin(); it != out.rend(); ++it) post(*it->first, it->second, msi);
      return;
    }
    auto* slot = reinterpret_cast<uint64_t*>(w.host_rrq_start + w.host_cursor * 8);
    std::atomic_ref<uint64_t>(*slot).store(ea | w.host_toggle, std::memory_order_release);
    if (w.host_rrq_start + w.host_cursor * 8 == w.host_rrq_end) {
      w.host_cursor = 0;
      w.host_toggle ^= SISL_RESP_HANDLE_T_BIT;
    } else {
      w.host_cursor++;
    }
    if (msi != 0) {
      cxl_event e{};
      e.header.type = CXL_EVENT_AFU_INTERRUPT;
      e.header.size = sizeof(cxl_event_header) + sizeof(cxl_event_afu_interrupt);
      e.irq.irq = msi;
      // An interrupt already pending and not yet read is not raised twice (interrupts coalesce),
      // so a host that never sleeps does not pile up events.
      auto& queue = events[w.adap_fd];
      if (queue.empty() || queue.back().header.type != CXL_EVENT_AFU_INTERRUPT || queue.back().irq.irq != msi) {
        queue.push_back(e);
      }
      events_cv.notify_all();
    }
  }

  // Completes a command with an injected status, as the AFU would write it (spec §4.3, §4.7).
  void complete_injected(Window& w, sisl_ioarcb* rcb, const sisl_rc& rc, uint8_t afu_extra, bool ua) {
    auto* sa = reinterpret_cast<sisl_ioasa*>(reinterpret_cast<char*>(rcb) + sizeof(sisl_ioarcb));
    std::memset(sa, 0, offsetof(sisl_ioasa, host_use));
    sa->rc = rc;
    sa->afu_extra = afu_extra;
    if (ua) {
      sa->rc.scsi_rc = SISL_SCSI_RC_CHECK;
      sa->rc.flags = SISL_RC_FLAGS_SENSE_VALID;
      sa->sense_data[0] = 0x70;  // fixed format, current
      sa->sense_data[2] = 0x6;   // UNIT ATTENTION
      sa->sense_data[7] = 10;
      sa->sense_data[12] = 0x29;  // power on, reset or bus device reset occurred
    }
    finish(w, reinterpret_cast<uint64_t>(rcb), rcb->msi);
  }

  // A command has completed (its IOASA is behind the IOARCB at `ea`): posts `ea` to the host's
  // RRQ, or for a command fetched from the SQ, copies the IOASA to where the host asked and posts
  // that address.
  void finish(Window& w, uint64_t ea, uint8_t msi) {
    auto it = w.sq_running.find(ea);
    if (it == w.sq_running.end()) {
      post(w, ea, msi);
      return;
    }
    // host_use (the IOASA's last 32 bytes) belongs to the host and is left alone.
    std::memcpy(reinterpret_cast<void*>(it->second.ioasa_ea), &it->second.copy->sa, offsetof(sisl_ioasa, host_use));
    const uint64_t ioasa_ea = it->second.ioasa_ea;
    w.sq_running.erase(it);
    post(w, ioasa_ea, msi);
  }

  // The host advanced sq_tail: the AFU fetches every queued IOARCB in ring order.
  void fetch_sq(Window& w) {
    while (!sq_stalled && w.sq_slots() != 0 && w.sq_head != w.sq_tail) {
      const auto* slot = reinterpret_cast<const sisl_ioarcb*>(w.sq_head);
      w.sq_head = w.sq_head == w.sq_end ? w.sq_start : w.sq_head + sizeof(sisl_ioarcb);
      counters.sq_fetches++;
      if (slot->reserved == 0 || slot->reserved % 16 != 0) {
        counters.sq_faults++;  // nowhere to write the IOASA (intr_status IOASA write fault)
        continue;
      }
      SqCommand command{std::make_unique<Command>(), slot->reserved};
      command.copy->rcb = *slot;
      const uint64_t ea = reinterpret_cast<uint64_t>(&command.copy->rcb);
      w.sq_running.emplace(ea, std::move(command));
      execute(w, ea);
    }
  }

  void write_sq_tail(Window& w, uint64_t tail) {
    const uint64_t n = w.sq_slots();
    if (n == 0 || tail < w.sq_start || tail > w.sq_end || (tail - w.sq_start) % sizeof(sisl_ioarcb) != 0) {
      counters.sq_faults++;  // a tail outside the ring: the AFU cannot fetch there
      return;
    }
    // A host that queues as many IOARCBs as the ring has slots makes tail == head: the AFU sees
    // an empty ring and the unfetched IOARCBs are lost (spec §4.7: at most ring size - 1).
    const uint64_t advance = (w.sq_index(tail) + n - w.sq_index(w.sq_tail)) % n;
    if (w.sq_depth() + advance >= n) counters.sq_overruns++;
    w.sq_tail = tail;
    fetch_sq(w);
  }

  void doorbell(Window& w, uint64_t ea) {
    counters.doorbells++;
    if (options.sq_mode && ea != SISL_IOARRIN_CTX_RST) {
      // The simulator's rule for an SQ-mode AFU [inferred]: IOARRIN takes no IOARCBs, so a host
      // that rings it anyway gets a capability violation instead of a silent success.
      sisl_rc rc{};
      rc.afu_rc = SISL_AFU_RC_CAP_VIOLATION;
      if (ea != 0 && ea % 16 == 0) complete_injected(w, reinterpret_cast<sisl_ioarcb*>(ea), rc, 0, false);
      return;
    }
    execute(w, ea);
  }

  // Runs the IOARCB at `ea` (its IOASA right behind it): injected faults first, else the AFU.
  void execute(Window& w, uint64_t ea) {
    auto* rcb = reinterpret_cast<sisl_ioarcb*>(ea);
    if (ea != SISL_IOARRIN_CTX_RST && ea % 16 == 0 && ea != 0) {
      if (fault.count > 0) {
        fault.count--;
        complete_injected(w, rcb, fault.rc, fault.afu_extra, false);
        return;
      }
      if (link_down > 0) {
        link_down--;
        sisl_rc rc{};
        rc.fc_rc = SISL_FC_RC_LINKDOWN;
        complete_injected(w, rcb, rc, 0, false);
        return;
      }
      if (unit_attention) {
        complete_injected(w, rcb, sisl_rc{}, 0, true);
        return;
      }
    }
    w.afu->write64(SISL_HOST_IOARRIN, ea);  // inline execution: the AFU has posted when this returns
    for (;;) {
      uint64_t entry = std::atomic_ref<uint64_t>(w.shadow[w.shadow_cursor]).load(std::memory_order_acquire);
      if ((entry & SISL_RESP_HANDLE_T_BIT) != w.shadow_toggle) break;
      if (++w.shadow_cursor == w.shadow.size()) {
        w.shadow_cursor = 0;
        w.shadow_toggle ^= SISL_RESP_HANDLE_T_BIT;
      }
      const uint64_t done = entry & ~SISL_RESP_HANDLE_T_BIT;
      finish(w, done, reinterpret_cast<sisl_ioarcb*>(done)->msi);
    }
  }

  Window* window(void* base) {
    auto it = windows.find(base);
    return it == windows.end() ? nullptr : &it->second;
  }
};

SimulatedKernel::SimulatedKernel(const SimulatedKernelOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.options = options;
  s.cmd_room = options.cmd_room;
  if (options.store) {
    s.store = options.store;
  } else {
    store::FileStoreOptions fo;
    fo.block_size = options.block_size;
    auto opened = store::open_file_store(options.image_path, fo);
    if (opened) {
      s.owned_store = std::move(opened).value();
      s.store = s.owned_store.get();
    }
  }
  SimAfuOptions ao;
  ao.cmd_room = options.cmd_room;
  s.afu = std::make_unique<SimAfu>(ao);
  if (s.store) s.afu->add_lun(kLunId, *s.store, kPorts);
  auto driver = vlun::Driver::create(*s.afu);
  if (driver) s.driver = std::move(driver).value();
  std::array<uint8_t, 16> wwid{};
  wwid[0] = 0x60;  // NAA-6
  if (s.driver && s.store) s.lun = &s.driver->add_lun(kLunId, wwid, kPorts);
}

SimulatedKernel::~SimulatedKernel() = default;

const SimulatedKernelCounters& SimulatedKernel::counters() const { return impl_->counters; }

int SimulatedKernel::open(const char* path, int flags) {
  if (impl_->options.device_path != path) return libc_kernel().open(path, flags);
  if (!impl_->lun) {
    errno = EIO;  // the image could not be opened
    return -1;
  }
  const int fd = eventfd(0, EFD_CLOEXEC);  // a real fd number that nothing else can have
  if (fd < 0) return -1;
  std::lock_guard lock(impl_->mu);
  impl_->disk_fds.insert(fd);
  return fd;
}

int SimulatedKernel::close(int fd) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->disk_fds.erase(fd);
    impl_->events.erase(fd);
    impl_->adapter_cookie.erase(fd);
  }
  return ::close(fd);
}

namespace {
template <typename Args>
int answer(std::error_code ec) {
  if (!ec) return 0;
  errno = ec.value();
  return -1;
}
}  // namespace

int SimulatedKernel::ioctl(int fd, unsigned long request, void* arg) {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (!s.disk_fds.count(fd)) return libc_kernel().ioctl(fd, request, arg);
  }
  vlun::Driver& d = *s.driver;
  vlun::Lun& lun = *s.lun;
  std::error_code ec;
  switch (request) {
    case DK_CXLFLASH_ATTACH: {
      auto* a = static_cast<dk_cxlflash_attach*>(arg);
      ec = d.attach(lun, *a);
      if (!ec) {
        s.counters.attaches++;
        s.counters.open_contexts++;
        std::lock_guard lock(s.mu);
        if (a->adap_fd != ~uint64_t{0}) s.adapter_cookie[static_cast<int>(a->adap_fd)] = a->context_id;
        if (s.options.sq_mode) a->hdr.return_flags |= DK_CXLFLASH_CONTEXT_SQ_CMD_MODE;
      }
      break;
    }
    case DK_CXLFLASH_USER_DIRECT: ec = d.user_direct(lun, *static_cast<dk_cxlflash_udirect*>(arg)); break;
    case DK_CXLFLASH_USER_VIRTUAL: ec = d.user_virtual(lun, *static_cast<dk_cxlflash_uvirtual*>(arg)); break;
    case DK_CXLFLASH_VLUN_RESIZE: ec = d.vlun_resize(lun, *static_cast<dk_cxlflash_resize*>(arg)); break;
    case DK_CXLFLASH_VLUN_CLONE: ec = d.vlun_clone(lun, *static_cast<dk_cxlflash_clone*>(arg)); break;
    case DK_CXLFLASH_RELEASE:
      ec = d.release(lun, *static_cast<dk_cxlflash_release*>(arg));
      if (!ec) s.counters.releases++;
      break;
    case DK_CXLFLASH_DETACH:
      ec = d.detach(lun, *static_cast<dk_cxlflash_detach*>(arg));
      if (!ec) {
        s.counters.detaches++;
        s.counters.open_contexts--;
      }
      break;
    case DK_CXLFLASH_VERIFY:
      ec = d.verify(lun, *static_cast<dk_cxlflash_verify*>(arg));
      if (!ec) {
        s.counters.verifies++;
        std::lock_guard lock(s.mu);
        s.unit_attention = false;
      }
      break;
    case DK_CXLFLASH_RECOVER_AFU: {
      auto* r = static_cast<dk_cxlflash_recover_afu*>(arg);
      s.counters.recovers++;
      std::lock_guard lock(s.mu);
      if (!s.awaiting_recovery.erase(r->context_id)) {
        ec = d.recover_afu(lun, *r);
        break;
      }
      // The same RHT page under a new adapter fd (spec §3.8); the cookie stays valid here.
      const int fresh = eventfd(0, EFD_CLOEXEC);
      if (fresh < 0) return -1;
      r->adap_fd = static_cast<uint64_t>(fresh);
      s.adapter_cookie[fresh] = r->context_id;
      r->mmio_size = SISL_HOST_MMIO_SIZE;
      r->hdr.return_flags = DK_CXLFLASH_APP_CLOSE_ADAP_FD | DK_CXLFLASH_RECOVER_AFU_CONTEXT_RESET;
      if (s.options.sq_mode) r->hdr.return_flags |= DK_CXLFLASH_CONTEXT_SQ_CMD_MODE;  // spec §3.8
      break;
    }
    case BLKZEROOUT: {  // what sd does for a disk node: the range reads as zeros after
      auto* range = static_cast<uint64_t*>(arg);
      ec = s.store->discard(range[0], range[1]);
      break;
    }
    case DK_CXLFLASH_MANAGE_LUN: ec = d.manage_lun(lun, *static_cast<dk_cxlflash_manage_lun*>(arg)); break;
    default: ec = errno_error(ENOTTY);
  }
  return answer<void>(ec);
}

void* SimulatedKernel::mmap(size_t length, int prot, int flags, int fd, off_t offset) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  auto owner = s.adapter_cookie.find(fd);
  if (owner == s.adapter_cookie.end()) return libc_kernel().mmap(length, prot, flags, fd, offset);
  MmioWindow* afu_window = s.driver->mmio(owner->second);
  if (afu_window == nullptr || offset != 0 || length < SISL_HOST_MMIO_SIZE) {
    errno = EINVAL;
    return MAP_FAILED;
  }
  // An inaccessible placeholder gives the window a unique address; every access to it must come
  // through mmio_read64/mmio_write64, so a stray direct access faults at once.
  void* base = ::mmap(nullptr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return MAP_FAILED;
  Window& w = s.windows[base];
  w.cookie = owner->second;
  w.adap_fd = fd;
  w.afu = afu_window;
  return base;
}

int SimulatedKernel::munmap(void* addr, size_t length) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->windows.erase(addr);
  }
  return ::munmap(addr, length);
}

int SimulatedKernel::poll(pollfd* fds, nfds_t count, int timeout_ms) {
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  for (nfds_t i = 0; i < count; ++i) {
    if (!s.adapter_cookie.count(fds[i].fd)) {
      lock.unlock();
      return libc_kernel().poll(fds, count, timeout_ms);
    }
  }
  auto ready = [&] {
    int n = 0;
    for (nfds_t i = 0; i < count; ++i) {
      auto it = s.events.find(fds[i].fd);
      fds[i].revents = (it != s.events.end() && !it->second.empty()) ? POLLIN : 0;
      n += fds[i].revents != 0;
    }
    return n;
  };
  s.events_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms < 0 ? 1000 : timeout_ms), [&] { return ready() > 0; });
  return ready();
}

ssize_t SimulatedKernel::read(int fd, void* buf, size_t count) {
  Impl& s = *impl_;
  std::unique_lock lock(s.mu);
  if (!s.adapter_cookie.count(fd)) {
    lock.unlock();
    return libc_kernel().read(fd, buf, count);
  }
  auto& queue = s.events[fd];
  size_t done = 0;
  // Like the cxl driver: whole events only, at least one or EAGAIN (the fd is non-blocking here).
  while (!queue.empty() && done + queue.front().header.size <= count) {
    std::memcpy(static_cast<char*>(buf) + done, &queue.front(), queue.front().header.size);
    done += queue.front().header.size;
    queue.pop_front();
    s.counters.events_delivered++;
  }
  if (done == 0) {
    errno = EAGAIN;
    return -1;
  }
  return static_cast<ssize_t>(done);
}

int SimulatedKernel::fsync(int fd) {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->disk_fds.count(fd)) return libc_kernel().fsync(fd);
  }
  if (auto ec = impl_->store->flush()) {
    errno = ec.value();
    return -1;
  }
  return 0;
}

uint64_t SimulatedKernel::mmio_read64(void* base, uint32_t offset) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  Window* w = s.window(base);
  if (w == nullptr) return libc_kernel().mmio_read64(base, offset);
  if (w->reset) return ~uint64_t{0};
  switch (offset) {
    case SISL_HOST_CMD_ROOM: return std::min<uint64_t>(w->afu->read64(offset), s.cmd_room);
    case SISL_HOST_RRQ_START: return w->host_rrq_start;
    case SISL_HOST_RRQ_END: return w->host_rrq_end;
    case SISL_HOST_SQ_START: return w->sq_start;
    case SISL_HOST_SQ_END: return w->sq_end;
    case SISL_HOST_SQ_HEAD: return w->sq_head;
    case SISL_HOST_SQ_TAIL: return w->sq_tail;
    case SISL_HOST_SQ_CTX_RESET: return 0;  // a context reset completes at once
    default: return w->afu->read64(offset);
  }
}

void SimulatedKernel::mmio_write64(void* base, uint32_t offset, uint64_t value) {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  Window* w = s.window(base);
  if (w == nullptr) return libc_kernel().mmio_write64(base, offset, value);
  if (w->reset) return;
  switch (offset) {
    case SISL_HOST_RRQ_START:  // spec §4.7: start is written before end
      w->host_rrq_start = value;
      w->host_cursor = 0;
      w->host_toggle = 1;
      if (value == 0) w->afu->write64(SISL_HOST_RRQ_START, 0);
      break;
    case SISL_HOST_RRQ_END:
      w->host_rrq_end = value;
      if (value == 0 || value < w->host_rrq_start) {
        w->afu->write64(SISL_HOST_RRQ_END, 0);
        break;
      }
      w->shadow.assign((value - w->host_rrq_start) / 8 + 1, 0);
      w->shadow_cursor = 0;
      w->shadow_toggle = 1;
      w->afu->write64(SISL_HOST_RRQ_START, reinterpret_cast<uint64_t>(&w->shadow.front()));
      w->afu->write64(SISL_HOST_RRQ_END, reinterpret_cast<uint64_t>(&w->shadow.back()));
      break;
    case SISL_HOST_IOARRIN: s.doorbell(*w, value); break;
    case SISL_HOST_SQ_START:  // spec §4.6: start before end; the ring starts empty
      w->sq_start = w->sq_head = w->sq_tail = value;
      w->sq_end = 0;
      break;
    case SISL_HOST_SQ_END: w->sq_end = value; break;
    case SISL_HOST_SQ_TAIL: s.write_sq_tail(*w, value); break;
    case SISL_HOST_SQ_CTX_RESET:  // abort what is queued and not fetched; no RRQ entries for it
      if (value & SISL_IOARRIN_CTX_RST) w->sq_head = w->sq_tail;
      break;
    default: w->afu->write64(offset, value);
  }
}

void SimulatedKernel::fail_commands(unsigned count, uint8_t afu_rc, uint8_t afu_extra, uint8_t fc_rc, uint8_t scsi_rc) {
  std::lock_guard lock(impl_->mu);
  impl_->fault.count = count;
  impl_->fault.rc = sisl_rc{};
  impl_->fault.rc.afu_rc = afu_rc;
  impl_->fault.rc.fc_rc = fc_rc;
  impl_->fault.rc.scsi_rc = scsi_rc;
  impl_->fault.afu_extra = afu_extra;
}

void SimulatedKernel::link_down(unsigned count) {
  std::lock_guard lock(impl_->mu);
  impl_->link_down = count;
}

void SimulatedKernel::reset_adapter() {
  std::lock_guard lock(impl_->mu);
  for (auto& [base, w] : impl_->windows) {
    w.reset = true;
    impl_->awaiting_recovery.insert(w.cookie);
  }
}

void SimulatedKernel::unit_attention() {
  std::lock_guard lock(impl_->mu);
  impl_->unit_attention = true;
}

void SimulatedKernel::set_cmd_room(unsigned room) {
  std::lock_guard lock(impl_->mu);
  impl_->cmd_room = room;
}

void SimulatedKernel::hold_completions(unsigned count) {
  std::lock_guard lock(impl_->mu);
  impl_->hold = count;
}

void SimulatedKernel::stall_sq(bool stalled) {
  std::lock_guard lock(impl_->mu);
  impl_->sq_stalled = stalled;
  for (auto& [base, w] : impl_->windows) impl_->fetch_sq(w);
}

uint64_t SimulatedKernel::sq_queued() const {
  std::lock_guard lock(impl_->mu);
  uint64_t queued = 0;
  for (const auto& [base, w] : impl_->windows) queued += w.sq_depth();
  return queued;
}

void SimulatedKernel::raise_error_event(uint16_t type) {
  std::lock_guard lock(impl_->mu);
  for (auto& [fd, cookie] : impl_->adapter_cookie) {
    cxl_event e{};
    e.header.type = type;
    e.header.size = sizeof(cxl_event_header) +
                    (type == CXL_EVENT_DATA_STORAGE ? sizeof(cxl_event_data_storage) : sizeof(cxl_event_afu_error));
    if (type == CXL_EVENT_DATA_STORAGE) e.fault.addr = 0xdead0000;
    if (type == CXL_EVENT_AFU_ERROR) e.afu_error.error = 0x42;
    impl_->events[fd].push_back(e);
  }
  impl_->events_cv.notify_all();
}

}  // namespace vlunfs::afu::capi
