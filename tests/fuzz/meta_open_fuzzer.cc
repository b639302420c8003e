// libFuzzer target over the metadata loader. The input's first byte chooses what is fixed up and
// exercised; the rest is laid over the metadata region (superblocks, both checkpoint slots, the
// journal) of a small populated image (metadata_image.h), so that inputs near the seed are near a
// valid image. Bits of the first byte:
//   1, 2, 4   recompute the superblock, checkpoint and journal checksums (reach the decoders)
//   8         cut the device short (just the metadata region: no data area)
//   16        also mount the image and read every file
// Build: CXX=clang++ cmake -B build-fuzz -DVLUNFS_BUILD_FUZZ=ON -DVLUNFS_SANITIZE=address,undefined
// Run:   build-fuzz/meta_open_fuzzer -max_len=24577 CORPUS_DIR  (docs/reliability.md)
// VLUNFS_FUZZ_WRITE_SEEDS=DIR writes seed inputs (the undamaged image, every flag set) and exits.
#include "fs/log.h"
#include "fuzz/metadata_image.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace vlunfs;

namespace {

const hostile::Bytes& base() {
  static const hostile::Bytes region = hostile::populated_metadata();
  return region;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fs::log_open("meta_open_fuzzer", false);
  if (const char* dir = std::getenv("VLUNFS_FUZZ_WRITE_SEEDS")) {
    for (unsigned flags : {0u, 7u, 23u}) {
      std::string path = std::string(dir) + "/seed-" + std::to_string(flags);
      std::FILE* f = std::fopen(path.c_str(), "wb");
      if (!f) std::abort();
      std::fputc(static_cast<int>(flags), f);
      std::fwrite(base().data(), 1, base().size(), f);
      std::fclose(f);
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned flags = data[0];
  hostile::Bytes region = base();
  const size_t n = std::min(size - 1, region.size());
  std::memcpy(region.data(), data + 1, n);
  hostile::fix_checksums(region, flags & 1, flags & 2, flags & 4);
  const uint64_t device_bytes = (flags & 8) ? hostile::kMetadataBytes : hostile::kDeviceBytes;
  const bool mount = flags & 16;
  hostile::Verdict v = hostile::exercise(region, device_bytes, mount);
  if (!v.opened && v.refusal.empty()) std::abort();             // a refusal must say why
  if (mount && v.opened && !v.mounted && v.mount_refusal.empty()) std::abort();
  return 0;
}
