// mkfs.vlunfs: formats a block device, or creates (sparse) and formats a simulated flash image.
//
// Nothing is written to a device that is in use: a block device is claimed (O_EXCL, as a mount
// claims it) before anything else, and a device that is mounted or held is refused whatever
// --force says. A failed mkfs removes an image that it created itself, and leaves a file that it
// refused as it was.
#include "afu/capi/device.h"
#include "tools/cli_parse.h"
#include "tools/mkfs_device.h"
#include "tools/size_arg.h"
#include "store/rbd/named_store.h"
#include "vlunfs/chunk_shift.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/store.h"

#include <blkid/blkid.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <optional>
#include <string>

namespace {

using namespace vlunfs;

constexpr int kUsage = 2;  // a bad option or argument, as for most programs

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

// A refusal for a device or image that mkfs opened and did not create: says why, changes nothing.
std::string refusal_for(const std::string& path, bool exists_already, bool force) {
  if (!exists_already || force) return "";
  store::FileStoreOptions probe_opts;
  probe_opts.block_size = 512;
  probe_opts.read_only = true;
  if (auto probe = store::open_file_store(path, probe_opts)) {
    if (meta::has_vlunfs_signature(*probe.value())) {
      return path + " already holds a vlunfs filesystem; use --force to overwrite it (every vLUN on it is lost)";
    }
  }
  std::string other = foreign_signature(path);
  if (!other.empty()) return path + " holds " + other + "; use --force to overwrite it";
  return "";
}

std::string open_failure(const std::string& path, std::error_code ec, bool block_device) {
  std::string text = path + ": " + ec.message();
  if (ec.value() == EBUSY && block_device) {
    const std::string users = tools::device_users(path);
    return path + " is in use" + (users.empty() ? " (another program holds it open exclusively)" : ": " + users) +
           "; will not make a filesystem here (--force does not change that). Unmount it or release it first";
  }
  if (ec.value() == EBUSY) return text + " (it is mounted, or another program holds it: unmount it first)";
  return text;
}

// Formats the opened device and prints the summary (unless quiet). On failure says why, with
// `removed_note` after it, and returns on_failure()'s code.
int format_and_report(store::BlockStore& dev, const std::string& path, uint32_t block_size, unsigned chunk_shift,
                      bool quiet, const char* removed_note, const std::function<int()>& on_failure) {
  meta::FormatOptions options;
  options.block_size = block_size;
  options.chunk_shift = chunk_shift;
  tools::EraseProgress progress;
  if (!quiet && ::isatty(STDERR_FILENO)) progress = tools::erase_progress_line(stderr);
  auto erasing = tools::with_erase_progress(dev, progress);
  auto g = meta::format(*erasing, options);
  if (!g) {
    std::fprintf(stderr, "mkfs.vlunfs: cannot format %s: %s%s\n", path.c_str(), g.error().message.c_str(), removed_note);
    erasing.reset();
    return on_failure();
  }
  if (quiet) return 0;
  const meta::Geometry& geo = g.value();
  std::printf("%s: vlunfs format %u, %s, block size %u, chunk %s (2^%u blocks%s)\n", path.c_str(), geo.version,
              tools::human_size(geo.device_bytes).c_str(), geo.block_size, tools::human_size(geo.chunk_bytes()).c_str(),
              geo.chunk_shift, geo.chunk_shift == sisl::HARDWARE_CHUNK_SHIFT ? ", as the hardware" : ", simulator only");
  std::printf("  flash pool: %llu chunks (%s); metadata: %s (journal %s, 2 checkpoints of %s)\n",
              static_cast<unsigned long long>(geo.data_chunks()),
              tools::human_size(geo.data_chunks() * geo.chunk_bytes()).c_str(),
              tools::human_size(geo.data_offset).c_str(), tools::human_size(geo.journal_bytes).c_str(),
              tools::human_size(geo.checkpoint_bytes).c_str());
  return 0;
}

// mkfs.vlunfs [--size SIZE] rbd:POOL/IMAGE: creates the image (thin, with the exclusive-lock
// feature that fencing needs) or, with --force, formats an existing one; holds its lock meanwhile,
// so a pool that is mounted anywhere is refused. An image it created and could not format is removed.
int format_rbd_image(const store::RbdImageName& image, const std::optional<uint64_t>& size, uint32_t block_size,
                     unsigned chunk_shift, bool force, bool quiet, const store::CephClientOptions& ceph) {
  store::RbdStoreOptions ro;
  ro.client = ceph;
  ro.block_size = block_size;
  ro.create_size = size.value_or(0);
  ro.exclusive_lock = true;
  store::RbdOpenReport report;
  auto opened = store::open_rbd_store(image, ro, &report);
  if (!opened) {
    std::fprintf(stderr, "mkfs.vlunfs: %s\n", report.detail.empty() ? opened.error().message().c_str() : report.detail.c_str());
    return 1;
  }
  std::unique_ptr<store::BlockStore> dev = std::move(opened).value();
  if (!report.created && !force) {
    std::fprintf(stderr, "mkfs.vlunfs: %s already exists%s; use --force to format it (every vLUN on it is lost)\n",
                 image.text().c_str(), meta::has_vlunfs_signature(*dev) ? " and holds a vlunfs filesystem" : "");
    return 1;
  }
  if (!report.created && size && dev->size_bytes() != *size) {
    std::fprintf(stderr, "mkfs.vlunfs: %s exists with another size (%s); resize it with rbd resize, or drop --size\n",
                 image.text().c_str(), tools::human_size(dev->size_bytes()).c_str());
    return 1;
  }
  auto failed = [&]() {
    dev.reset();
    if (report.created) (void)store::remove_rbd_image(image, ceph);
    return 1;
  };
  return format_and_report(*dev, image.text(), block_size, chunk_shift, quiet,
                           report.created ? " (the image it created is removed)" : "", failed);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Format a flash device or create a simulated flash image for vlunfs"};
  app.set_version_flag("-V,--version", "mkfs.vlunfs 0.1.0");
  std::string path, size_text;
  uint32_t block_size = 4096;
  unsigned chunk_shift = sisl::HARDWARE_CHUNK_SHIFT;
  bool force = false, quiet = false;
  std::string backend_text = "auto";
  app.add_option("DEVICE_OR_IMAGE", path,
                 "block device, image file (created sparse if missing), or Ceph RBD image rbd:POOL/IMAGE (created "
                 "thin if missing)")->required();
  app.add_option("-s,--size", size_text,
                 "size of the image to create: bytes, or a number with a unit K, M, G, T, P, E (powers of "
                 "1024; KiB, GiB... also work), e.g. 64G or 1.5T");
  app.add_option("-b,--block-size", block_size, "block size in bytes: 4096 (default) or 512")
      ->check(CLI::IsMember({4096, 512}));
  app.add_option("--chunk-shift", chunk_shift,
                 "chunk = 2^N blocks; 16 is the hardware's (256 MiB with 4 KiB blocks). Smaller values "
                 "are beyond the hardware: simulator only, for tests and tiny demos")
      ->check(CLI::Range(sisl::MIN_CHUNK_SHIFT, sisl::MAX_CHUNK_SHIFT));
  app.add_flag("-f,--force", force,
               "overwrite an existing vlunfs or another filesystem's signature (never a device that is mounted "
               "or in use)");
  app.add_option("--backend", backend_text,
                 "capi: the device is a CAPI flash LUN (/dev/sgN or /dev/sdX in superpipe mode), formatted through "
                 "the cxlflash ioctls; sim: an image or block device; auto (default): capi when the device answers "
                 "DK_CXLFLASH_ATTACH")
      ->check(CLI::IsMember({"auto", "sim", "capi"}));
  std::string option_list;
  app.add_option("-o,--options", option_list,
                 "for rbd:POOL/IMAGE: ceph_conf=PATH (default /etc/ceph/ceph.conf), ceph_id=NAME (default admin)");
  app.add_flag("-q,--quiet", quiet, "print nothing but errors (no summary, no progress line)");
  if (auto code = tools::parse_command_line(app, argc, argv, kUsage)) return *code;

  std::optional<uint64_t> size;
  if (!size_text.empty()) {
    auto parsed = tools::parse_size(size_text);
    if (!parsed) {
      std::fprintf(stderr, "mkfs.vlunfs: bad size for --size: %s\n", parsed.error().message.c_str());
      return kUsage;
    }
    size = parsed.value();
    if (*size == 0) {
      std::fprintf(stderr, "mkfs.vlunfs: bad size for --size: '%s' is zero; give the image's size, e.g. 64G\n", size_text.c_str());
      return kUsage;
    }
    if (*size % block_size != 0) {
      std::fprintf(stderr, "mkfs.vlunfs: --size %s (%llu bytes) is not a multiple of the block size %u\n",
                   size_text.c_str(), static_cast<unsigned long long>(*size), block_size);
      return kUsage;
    }
  }
  if (auto image = store::parse_rbd_name(path)) {
    store::CephClientOptions ceph;
    std::string unknown, why;
    bool takeover = false;
    if (!store::take_ceph_options(option_list, &ceph, &takeover, &unknown, &why) || takeover || !unknown.empty()) {
      std::fprintf(stderr, "mkfs.vlunfs: %s\n", !why.empty() ? why.c_str() : ("-o " + option_list + ": only ceph_conf=PATH and ceph_id=NAME").c_str());
      return kUsage;
    }
    return format_rbd_image(*image, size, block_size, chunk_shift, force, quiet, ceph);
  }
  if (!option_list.empty()) {
    std::fprintf(stderr, "mkfs.vlunfs: -o is for rbd:POOL/IMAGE only\n");
    return kUsage;
  }
  const bool on_capi = afu::capi::use_capi(afu::capi::parse_backend(backend_text).value(), path);
  if (on_capi && size) {
    std::fprintf(stderr, "mkfs.vlunfs: %s is a CAPI flash LUN; its size is its own (drop --size)\n", path.c_str());
    return 1;
  }
  struct stat st{};
  const bool exists = on_capi || ::stat(path.c_str(), &st) == 0;
  const bool block_device = exists && S_ISBLK(st.st_mode);
  if (!exists && !size) {
    std::fprintf(stderr, "mkfs.vlunfs: %s does not exist; give --size to create a simulated flash image\n", path.c_str());
    return 1;
  }
  if (block_device && size) {
    std::fprintf(stderr, "mkfs.vlunfs: %s is a block device; its size is its own (drop --size)\n", path.c_str());
    return 1;
  }

  // A block device is claimed first: a device in use is refused before anything is read or written,
  // and nothing can mount it until the format is done.
  store::FileStoreOptions fo;
  fo.block_size = block_size;
  fo.exclusive_lock = true;
  std::unique_ptr<store::BlockStore> dev;
  if (on_capi) {
    // The whole LUN through the hardware backend (USER_DIRECT); the kernel's LUN lock keeps
    // other superpipe users from opening it in another mode meanwhile.
    std::string why;
    auto opened = afu::capi::open_capi_device(
        path, false, [](const std::string& line) { std::fprintf(stderr, "mkfs.vlunfs: %s\n", line.c_str()); }, &why);
    if (!opened) {
      std::fprintf(stderr, "mkfs.vlunfs: %s\n", why.c_str());
      return 1;
    }
    dev = std::move(opened.value().store);
    if (!force && meta::has_vlunfs_signature(*dev)) {
      std::fprintf(stderr, "mkfs.vlunfs: %s already holds a vlunfs filesystem; use --force to overwrite it (every vLUN on it is lost)\n",
                   path.c_str());
      return 1;
    }
  } else if (block_device) {
    auto opened = store::open_file_store(path, fo);
    if (!opened) {
      std::fprintf(stderr, "mkfs.vlunfs: %s\n", open_failure(path, opened.error(), true).c_str());
      return 1;
    }
    dev = std::move(opened).value();
  }
  if (std::string refusal = on_capi ? "" : refusal_for(path, exists, force); !refusal.empty()) {
    std::fprintf(stderr, "mkfs.vlunfs: %s\n", refusal.c_str());
    return 1;
  }

  // From here on a failure removes the image if this run created it.
  bool created = false;
  auto failed = [&]() {
    dev.reset();
    if (created) ::unlink(path.c_str());
    return 1;
  };
  if (!block_device && !on_capi) {
    if (exists && size && static_cast<uint64_t>(st.st_size) != *size) {
      // Resized only if no mount holds it (the lock goes with the probe; the store takes it again).
      // Any other refusal of the probe (a size that is no multiple of a block) the resize cures.
      if (auto in_use = store::open_file_store(path, fo); !in_use && in_use.error().value() == EBUSY) {
        std::fprintf(stderr, "mkfs.vlunfs: %s\n", open_failure(path, in_use.error(), false).c_str());
        return 1;
      }
      if (::truncate(path.c_str(), static_cast<off_t>(*size)) != 0) {
        std::perror(("mkfs.vlunfs: resize " + path).c_str());
        return 1;
      }
    }
    fo.create_size = exists ? 0 : *size;
    auto opened = store::open_file_store(path, fo);
    created = !exists && ::access(path.c_str(), F_OK) == 0;
    if (!opened) {
      std::fprintf(stderr, "mkfs.vlunfs: %s\n", open_failure(path, opened.error(), false).c_str());
      return failed();
    }
    dev = std::move(opened).value();
  }

  return format_and_report(*dev, path, block_size, chunk_shift, quiet,
                           created ? " (the image it created is removed)" : "", failed);
}
