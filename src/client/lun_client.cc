#include "client/lun_client.h"

#include "client/vlun.h"
#include "vlunfs/chunk_shift.h"
#include "vlunfs/rrq_size.h"
#include "vlunfs/sislite.h"
#include "vlunfs/vlun.h"
#include "vlunfs/zero_chunk.h"

#include <fcntl.h>
#include <unistd.h>

#include <exception>

namespace vlunfs::client {

namespace {


// The one place the driver is constructed.
Result<std::unique_ptr<vlun::Driver>, Error> make_driver(afu::Afu& afu, const vlun::DriverOptions& options) {
  auto driver = vlun::Driver::create(afu, options);
  if (!driver) return Error(driver.error()).within("cannot start the vLUN driver");
  return std::move(driver).value();
}

}  // namespace

Result<std::unique_ptr<LunClient>, Error> LunClient::open(AfuBackend backend, const LunOptions& options) {
  if (!sisl::chunk_shift_in_range(options.chunk_shift)) {
    return make_error(EINVAL, sisl::chunk_shift_refusal(options.chunk_shift) + ", in the superblock");
  }
  if (!backend.afu) return make_error(EINVAL, "no AFU backend to drive the flash with");
  std::unique_ptr<LunClient> client(new LunClient(options));
  client->afu_ = std::move(backend.afu);
  vlun::DriverOptions dopt;
  dopt.chunk_shift = options.chunk_shift;
  client->max_handles_per_context_ = dopt.max_rht_per_context;
  auto driver = make_driver(*client->afu_, dopt);
  if (!driver) return driver.error();
  client->driver_ = std::move(driver).value();
  vlun::Driver& drv = *client->driver_;
  client->lun_ = &drv.add_lun(backend.lun_id, options.wwid, backend.port_mask);
  if (auto ec = drv.pin_virtual(*client->lun_)) return Error(ec).within("cannot put the flash in virtual mode");
  client->pinned_ = true;
  vlun::LunInfo info = drv.lun_info(*client->lun_);
  client->lun_index_ = static_cast<unsigned>(info.lun_index);
  client->port_sel_ = info.port_sel;
  client->zero_aun_ = vlun::zero_chunk_aun(info.total_chunks);
  if (auto ec = drv.set_zero_chunk(*client->lun_, client->zero_aun_)) {
    return Error(ec).within("cannot reserve the zero chunk");
  }
  return client;
}

LunClient::LunClient(const LunOptions& options) : options_(options) {}

void LunClient::shutdown() {
  if (!driver_) return;
  std::lock_guard lock(pool_mu_);
  for (auto& slot : contexts_) {
    slot->queue.reset();
    dk_cxlflash_detach d{};
    d.context_id = slot->cookie;
    (void)driver_->detach(*lun_, d);
    if (slot->adap_fd >= 0) close(slot->adap_fd);
  }
  contexts_.clear();
  if (pinned_) driver_->unpin_virtual(*lun_);
  pinned_ = false;
}

LunClient::~LunClient() { shutdown(); }

void LunClient::log(const std::string& message) const {
  if (options_.log_error) options_.log_error(message);
}

std::error_code LunClient::adopt(std::span<const uint64_t> lxt) { return driver_->adopt_chunks(*lun_, lxt); }

std::error_code LunClient::zero_free_chunks() { return driver_->zero_free_chunks(*lun_); }

Result<ContextSlot*> LunClient::slot_with_room_locked() {
  for (auto& s : contexts_) {
    if (s->handles.size() < max_handles_per_context_) return s.get();
  }
  dk_cxlflash_attach a{};
  a.hdr.flags = options_.read_only ? O_RDONLY : O_RDWR;
  if (auto ec = driver_->attach(*lun_, a)) return ec;
  auto s = std::make_unique<ContextSlot>();
  s->cookie = a.context_id;
  s->adap_fd = static_cast<int>(a.adap_fd);
  s->ctxid = static_cast<uint16_t>(a.context_id & 0xFFFF);
  s->queue = std::make_unique<afu::HostQueue>(*driver_->mmio(a.context_id), afu::RRQ_ENTRIES);
  contexts_.push_back(std::move(s));
  return contexts_.back().get();
}

Result<std::unique_ptr<Vlun>> LunClient::checkout(uint64_t label, const std::span<const uint64_t>* persisted) {
  std::lock_guard lock(pool_mu_);
  auto slot = slot_with_room_locked();
  if (!slot) return slot.error();
  ContextSlot& s = *slot.value();
  uint64_t handle = 0;
  if (!persisted) {
    // A new file: USER_VIRTUAL of size 0, asking for chunks to be zeroed when given back.
    dk_cxlflash_uvirtual uv{};
    uv.hdr.flags = DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME;
    uv.context_id = s.cookie;
    uv.lun_size = 0;
    if (auto ec = driver_->user_virtual(*lun_, uv)) return ec;
    handle = uv.rsrc_handle;
  } else {
    if (auto ec = driver_->open_vlun(*lun_, s.cookie, *persisted, &handle)) return ec;
    (void)driver_->set_write_same(*lun_, s.cookie, handle, true);
  }
  s.handles.insert(handle);
  return std::unique_ptr<Vlun>(new Vlun(*this, s, handle, label, persisted ? persisted->size() : 0));
}

Result<std::unique_ptr<Vlun>> LunClient::create_vlun(uint64_t label) { return checkout(label, nullptr); }

Result<std::unique_ptr<Vlun>> LunClient::open_vlun(uint64_t label, std::span<const uint64_t> lxt) {
  return checkout(label, &lxt);
}

Result<uint64_t> LunClient::alloc_chunk() { return driver_->alloc_chunk(*lun_); }

bool LunClient::share_chunk(uint64_t aun) { return driver_->share_chunk(*lun_, aun); }

void LunClient::drop_chunk(uint64_t aun, bool zero_if_last) { driver_->drop_chunk(*lun_, aun, zero_if_last); }

unsigned LunClient::chunk_references(uint64_t aun) const { return driver_->chunk_references(*lun_, aun); }

std::error_code LunClient::copy_chunk(uint64_t from_aun, uint64_t to_aun) {
  return driver_->copy_chunk(*lun_, from_aun, to_aun);
}

uint64_t LunClient::lxt_entry(uint64_t aun, bool writable) const {
  return sisl::make_lxt_entry(aun, lun_index_, writable ? sisl::LXT_PERM_READ | sisl::LXT_PERM_WRITE : sisl::LXT_PERM_READ,
                              port_sel_);
}

bool LunClient::maps_zero(uint64_t entry) const { return sisl::lxt_aun(entry) == zero_aun_; }

std::error_code LunClient::synchronize_cache() { return sync_group_.flush(); }

std::error_code LunClient::issue_synchronize_cache() { return driver_->synchronize_cache(*lun_); }

uint64_t LunClient::total_chunks() const { return vlun::allocatable_chunks(driver_->lun_info(*lun_).total_chunks); }

uint64_t LunClient::free_chunks() const { return driver_->lun_info(*lun_).free_chunks; }

size_t LunClient::context_count() const {
  std::lock_guard lock(pool_mu_);
  return contexts_.size();
}

Error LunClient::adopt_parent_contexts() {
  std::lock_guard lock(pool_mu_);
  const pid_t parent = getppid();
  for (auto& slot : contexts_) {
    dk_cxlflash_attach a{};
    a.hdr.flags = options_.read_only ? O_RDONLY : O_RDWR;
    if (auto ec = driver_->attach(*lun_, a)) {
      return Error(ec).within("the daemon could not attach its own AFU context");
    }
    dk_cxlflash_clone c{};
    c.context_id_src = slot->cookie;
    c.context_id_dst = a.context_id;
    c.adap_fd_src = static_cast<uint64_t>(slot->adap_fd);
    if (auto ec = driver_->vlun_clone(*lun_, c)) return Error(ec).within("VLUN_CLONE of the parent's context failed");
    // The child closes its inherited copy of the parent's adapter fd (APP_CLOSE_ADAP_FD).
    if (slot->adap_fd >= 0) close(slot->adap_fd);
    slot->cookie = a.context_id;
    slot->adap_fd = static_cast<int>(a.adap_fd);
    slot->ctxid = static_cast<uint16_t>(a.context_id & 0xFFFF);
    slot->queue = std::make_unique<afu::HostQueue>(*driver_->mmio(a.context_id), afu::RRQ_ENTRIES);
    // Same handle numbers in the child (spec §6); the write-same wish is not cloned.
    for (uint64_t handle : slot->handles) (void)driver_->set_write_same(*lun_, slot->cookie, handle, true);
  }
  driver_->process_exited(parent);
  return {};
}

}  // namespace vlunfs::client
