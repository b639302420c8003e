#include "client/simulated_afu.h"

namespace vlunfs::client {

AfuFactory simulated_afu(afu::SimAfuOptions options, afu::SimAfu** created) {
  return [options, created](store::BlockStore& data_region) -> Result<AfuBackend> {
    AfuBackend backend;
    auto sim = std::make_unique<afu::SimAfu>(options);
    sim->add_lun(backend.lun_id, data_region, backend.port_mask);
    if (created) *created = sim.get();
    backend.afu = std::move(sim);
    return backend;
  };
}

}  // namespace vlunfs::client
