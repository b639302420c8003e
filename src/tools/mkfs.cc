// mkfs.vlunfs: formats a block device, or creates (sparse) and formats a simulated flash image.
#include "tools/size_arg.h"
#include "vlunfs/meta.h"
#include "vlunfs/store.h"

#include <CLI/CLI.hpp>
#include <blkid/blkid.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

namespace {

// Another filesystem's (or partition table's) signature, as libblkid sees it; empty if none.
std::string foreign_signature(const std::string& path) {
  blkid_probe pr = blkid_new_probe_from_filename(path.c_str());
  if (!pr) return "";
  blkid_probe_enable_superblocks(pr, 1);
  blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
  blkid_probe_enable_partitions(pr, 1);
  std::string found;
  if (blkid_do_safeprobe(pr) == 0) {
    const char* type = nullptr;
    if (blkid_probe_lookup_value(pr, "TYPE", &type, nullptr) == 0 && type) {
      found = type;
    } else if (blkid_probe_lookup_value(pr, "PTTYPE", &type, nullptr) == 0 && type) {
      found = std::string("a partition table (") + type + ")";
    }
  }
  blkid_free_probe(pr);
  return found;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vlunfs;
  CLI::App app{"Format a flash device or create a simulated flash image for vlunfs"};
  app.set_version_flag("-V,--version", "mkfs.vlunfs 0.1.0");
  std::string path, size_text;
  uint32_t block_size = 4096;
  unsigned chunk_shift = 16;
  bool force = false;
  app.add_option("DEVICE_OR_IMAGE", path, "block device, or image file (created sparse if missing)")->required();
  app.add_option("-s,--size", size_text, "size of the image to create, e.g. 64G (K/M/G/T suffixes)");
  app.add_option("-b,--block-size", block_size, "block size in bytes: 4096 (default) or 512")
      ->check(CLI::IsMember({4096, 512}));
  app.add_option("--chunk-shift", chunk_shift,
                 "chunk = 2^N blocks; 16 is the hardware's (256 MiB with 4 KiB blocks). Smaller values "
                 "are beyond the hardware: simulator only, for tests and tiny demos")
      ->check(CLI::Range(4, 16));
  app.add_flag("-f,--force", force, "overwrite an existing vlunfs or another filesystem's signature");
  CLI11_PARSE(app, argc, argv);

  std::optional<uint64_t> size;
  if (!size_text.empty()) {
    size = tools::parse_size(size_text);
    if (!size || *size == 0) {
      std::fprintf(stderr, "mkfs.vlunfs: bad size '%s': use a number with an optional K/M/G/T suffix, e.g. 64G\n",
                   size_text.c_str());
      return 1;
    }
    if (*size % block_size != 0) {
      std::fprintf(stderr, "mkfs.vlunfs: size %s is not a multiple of the block size %u\n", size_text.c_str(), block_size);
      return 1;
    }
  }
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  bool block_device = exists && S_ISBLK(st.st_mode);
  if (!exists && !size) {
    std::fprintf(stderr, "mkfs.vlunfs: %s does not exist; give --size to create a simulated flash image\n", path.c_str());
    return 1;
  }
  if (block_device && size) {
    std::fprintf(stderr, "mkfs.vlunfs: %s is a block device; its size is its own (drop --size)\n", path.c_str());
    return 1;
  }
  if (exists && !force) {
    store::FileStoreOptions probe_opts;
    probe_opts.block_size = 512;
    probe_opts.read_only = true;
    if (auto probe = store::open_file_store(path, probe_opts)) {
      if (meta::has_vlunfs_signature(*probe.value())) {
        std::fprintf(stderr, "mkfs.vlunfs: %s already holds a vlunfs filesystem; use --force to overwrite it "
                             "(every vLUN on it is lost)\n", path.c_str());
        return 1;
      }
    }
    std::string other = foreign_signature(path);
    if (!other.empty()) {
      std::fprintf(stderr, "mkfs.vlunfs: %s holds %s; use --force to overwrite it\n", path.c_str(), other.c_str());
      return 1;
    }
  }
  if (exists && !block_device && size && static_cast<uint64_t>(st.st_size) != *size) {
    if (::truncate(path.c_str(), static_cast<off_t>(*size)) != 0) {
      std::perror(("mkfs.vlunfs: resize " + path).c_str());
      return 1;
    }
  }
  store::FileStoreOptions fo;
  fo.block_size = block_size;
  fo.create_size = exists ? 0 : *size;
  fo.exclusive_lock = true;
  auto dev = store::open_file_store(path, fo);
  if (!dev) {
    int e = dev.error().value();
    std::fprintf(stderr, "mkfs.vlunfs: %s: %s%s\n", path.c_str(), dev.error().message().c_str(),
                 e == EBUSY ? " (is it mounted? unmount it first)" : "");
    return 1;
  }
  meta::FormatOptions options;
  options.block_size = block_size;
  options.chunk_shift = chunk_shift;
  std::string why;
  auto g = meta::format(*dev.value(), options, &why);
  if (!g) {
    std::fprintf(stderr, "mkfs.vlunfs: cannot format %s: %s\n", path.c_str(),
                 why.empty() ? g.error().message().c_str() : why.c_str());
    return 1;
  }
  const meta::Geometry& geo = g.value();
  std::printf("%s: vlunfs format %u, %s, block size %u, chunk %s (2^%u blocks%s)\n", path.c_str(), geo.version,
              tools::human_size(geo.device_bytes).c_str(), geo.block_size, tools::human_size(geo.chunk_bytes()).c_str(),
              geo.chunk_shift, geo.chunk_shift == 16 ? ", as the hardware" : ", simulator only");
  std::printf("  flash pool: %llu chunks (%s); metadata: %s (journal %s, 2 checkpoints of %s)\n",
              static_cast<unsigned long long>(geo.data_chunks()),
              tools::human_size(geo.data_chunks() * geo.chunk_bytes()).c_str(),
              tools::human_size(geo.data_offset).c_str(), tools::human_size(geo.journal_bytes).c_str(),
              tools::human_size(geo.checkpoint_bytes).c_str());
  return 0;
}
