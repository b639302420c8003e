#include "tools/fsck.h"

#include "afu/capi/device.h"
#include "store/rbd/named_store.h"
#include "vlunfs/image_release.h"
#include "vlunfs/meta/inspection.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/store.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace vlunfs::fsck {

namespace {

void show_progress(const char* what, uint64_t done, uint64_t total) {
  std::fprintf(stderr, "\rfsck: %s %llu/%llu (%llu%%)%s", what, static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total),
               static_cast<unsigned long long>(total ? done * 100 / total : 100), done == total ? "\n" : "");
}

void add(std::vector<Finding>* to, Check check, Severity severity, std::string text, bool copy = false) {
  to->push_back({check, severity, std::move(text), copy, copy ? Fix::preen : Fix::none});
}

// Sorts what inspect_metadata() found into errors and notes. `used` is the superblock copy open()
// chose (-1 if none). A checkpoint slot that belongs to the *older* valid superblock copy and does
// not check out is what an interrupted checkpoint leaves behind (it writes that slot first, then
// that copy): normal after a crash, so a note; the next checkpoint rewrites it.
void sort_inspection(const meta::MetadataInspection& in, int used, std::vector<Finding>* found, bool* fallback_lost) {
  for (int i = 0; i < 2; i++) {
    const meta::MetadataCopyReport& sb = in.superblocks[i];
    if (!sb.valid) {
      add(found, Check::superblock, Severity::error,
          "superblock copy " + std::to_string(i) + " at byte " + std::to_string(sb.offset) + ": " + sb.problem, true);
    }
  }
  for (int i = 0; i < 2; i++) {
    const meta::MetadataCopyReport& slot = in.checkpoints[i];
    if (!in.superblocks[i].valid || slot.valid) continue;
    const std::string what = "checkpoint slot " + std::to_string(i) + " (generation " + std::to_string(slot.generation) +
                             ", at byte " + std::to_string(slot.offset) + "): " + slot.problem;
    const bool older = used >= 0 && used != i && in.superblocks[used].generation > slot.generation;
    if (older) {
      add(found, Check::checkpoint, Severity::note,
          what + "; it is the fallback of the older superblock copy, as an interrupted checkpoint leaves it "
                 "(the next checkpoint, or fsck -p or -y, rewrites it)",
          true);
      *fallback_lost = true;
    } else {
      add(found, Check::checkpoint, Severity::error, what, true);
    }
  }
  if (in.copies_disagree) {
    add(found, Check::superblock, Severity::error,
        "the two superblock copies describe different file systems (geometry or UUID)", true);
  }
}

// What open() alone sees: inspect_metadata() reports the superblock copies and checkpoint slots
// itself (with the same facts), so open()'s words for them would only repeat it.
void add_open_problems(const meta::OpenReport& report, std::vector<Finding>* found) {
  for (const meta::OpenProblem& p : report.problems) {
    switch (p.part) {
      case meta::OpenProblemPart::superblock_copy:
      case meta::OpenProblemPart::checkpoint:
        break;
      case meta::OpenProblemPart::uuid:
        add(found, Check::superblock, Severity::error, p.text, true);
        break;
      case meta::OpenProblemPart::journal:
        add(found, Check::journal, Severity::error, p.text, true);
        break;
    }
  }
}

}  // namespace

// The findings about the stored metadata that a fresh checkpoint supersedes.
std::vector<Finding> superseded_by_checkpoint(const std::vector<Finding>& found) {
  std::vector<Finding> out;
  for (const Finding& f : found) {
    if (f.copy && f.severity == Severity::error) out.push_back(f);
  }
  return out;
}

void add_before(Report* r, const std::vector<Finding>& found) {
  r->findings.insert(r->findings.begin(), found.begin(), found.end());
}

Report check_device(store::BlockStore& device, const std::string& name, const Options& options) {
  Report r;
  if (options.progress) std::fprintf(stderr, "fsck: reading the superblocks and checkpoints of %s\n", name.c_str());

  // ---- Every superblock copy and checkpoint slot, each on its own ----
  meta::MetadataInspection inspection = meta::inspect_metadata(device);
  if (inspection.superblocks[0].absent && inspection.superblocks[1].absent) {
    add(&r.findings, Check::superblock, Severity::error,
        name + ": no vlunfs superblock at byte 0 or byte 4096: not formatted with vlunfs");
    r.exit_code = EXIT_OPERATIONAL;
    return r;
  }

  // ---- The state a mount would see ----
  if (options.progress) std::fprintf(stderr, "fsck: loading the metadata and replaying the journal\n");
  const Repair mode = options.mode();
  meta::OpenOptions mo;
  mo.read_only = mode == Repair::kNone;
  meta::OpenReport report;
  auto store = meta::MetaStore::open(device, mo, &report);
  std::vector<Finding> found;  // about the stored metadata, ahead of the namespace's findings
  bool fallback_lost = false;
  sort_inspection(inspection, store ? report.superblock_used : -1, &found, &fallback_lost);
  if (!store) {
    r.findings = superseded_by_checkpoint(found);
    add(&r.findings, Check::superblock, Severity::error, store.error().within(name).message);
    add(&r.findings, Check::superblock, Severity::error,
        "no usable superblock and checkpoint: the device cannot be mounted, and fsck cannot repair it");
    r.exit_code = (store.error().value() == EIO || inspection.read_error) ? EXIT_OPERATIONAL : EXIT_ERRORS_LEFT;
    return r;
  }
  add_open_problems(report, &found);
  found.insert(found.begin(), {Check::superblock, Severity::note,
                               "superblock copy " + std::to_string(report.superblock_used) + ", generation " +
                                   std::to_string(report.generation) +
                                   (report.fell_back ? " (a fallback: the newer metadata is unusable)" : "") + ", " +
                                   std::to_string(report.records_replayed) +
                                   " journal records replayed (stopped at: " + report.journal_stop_reason + ")"});
  const std::vector<Finding> metadata_errors = superseded_by_checkpoint(found);

  meta::MetaStore& m = *store.value();
  const meta::Geometry& g = m.geometry();
  if (options.progress) std::fprintf(stderr, "fsck: checking %zu inodes\n", m.ns().inodes.size());
  Progress progress;
  if (options.progress) progress = [](uint64_t done, uint64_t total) { show_progress("inodes", done, total); };
  std::vector<uint64_t> freed;
  if (mode == Repair::kPreen) {
    // Preening repairs all or nothing: if a problem needs fsck -y, nothing is written and every
    // problem is reported as it is (e2fsck -p stops the same way, for a manual run).
    meta::Namespace trial = m.ns();
    if (check_namespace(trial, g, Repair::kPreen).has_errors()) {
      Report left = check_namespace(m.ns(), g, Repair::kNone, nullptr, progress);
      add_before(&left, found);
      add(&left.findings, Check::preen, Severity::error,
          "not preened: a problem above needs fsck -y (vlunctl fsck -y), nothing was changed");
      left.exit_code = EXIT_ERRORS_LEFT;
      return left;
    }
  }
  Report checked = check_namespace(m.ns(), g, mode, &freed, progress);

  const bool rewrite =
      mode != Repair::kNone && (checked.count(Severity::repaired) > 0 || !metadata_errors.empty() || fallback_lost);
  if (!rewrite) {
    add_before(&checked, found);
    checked.exit_code = checked.has_errors()                       ? EXIT_ERRORS_LEFT
                        : checked.count(Severity::repaired) == 0 ? EXIT_CLEAN
                                                                 : EXIT_FIXED;
    return checked;
  }

  // ---- Repair: zero the freed chunks, then one fresh checkpoint ----
  // The checkpoint goes to the slot and superblock copy that the state in use does not occupy,
  // which is where the damage is when one copy is damaged; the copy in use is never overwritten.
  for (uint64_t aun : freed) {
    if (auto ec = device.discard(g.data_offset + aun * g.chunk_bytes(), g.chunk_bytes())) {
      add(&checked.findings, Check::device, Severity::error,
          "zeroing freed chunk " + std::to_string(aun) + " failed: " + ec.message());
    }
  }
  if (auto ec = m.checkpoint()) {
    add_before(&checked, found);
    add(&checked.findings, Check::device, Severity::error, "writing the repaired metadata failed: " + ec.message());
    checked.exit_code = EXIT_OPERATIONAL;
    return checked;
  }
  // The stored metadata's errors are superseded by the checkpoint just written; its notes stay.
  std::vector<Finding> notes;
  std::copy_if(found.begin(), found.end(), std::back_inserter(notes),
               [](const Finding& f) { return f.severity == Severity::note; });
  add_before(&checked, notes);
  for (Finding f : metadata_errors) {
    f.severity = Severity::repaired;
    f.text += ": superseded";
    checked.findings.push_back(std::move(f));
  }
  if (!metadata_errors.empty() || fallback_lost) {
    add(&checked.findings, Check::checkpoint, Severity::repaired,
        "wrote a fresh checkpoint (and superblock copy) of the state in use");
  }
  if (auto ec = device.flush()) {
    add(&checked.findings, Check::device, Severity::error, "flushing the device failed: " + ec.message());
  }
  // Proof that the repair holds: the device must now inspect clean.
  meta::MetadataInspection after = meta::inspect_metadata(device);
  for (const std::string& p : after.problems) {
    add(&checked.findings, Check::device, Severity::error, "after repair: " + p, true);
  }
  checked.exit_code = checked.has_errors() ? EXIT_ERRORS_LEFT : EXIT_FIXED;
  return checked;
}

Report run(const std::string& device, const Options& options) {
  // A CAPI flash LUN (its ATTACH ioctl answers) is checked through the hardware backend.
  if (afu::capi::use_capi(afu::capi::Backend::automatic, device)) {
    std::string why;
    auto capi = afu::capi::open_capi_device(device, options.mode() == Repair::kNone,
                                            [](const std::string& line) { std::fprintf(stderr, "fsck: %s\n", line.c_str()); },
                                            &why);
    if (!capi) {
      Report r;
      add(&r.findings, Check::device, Severity::error, why);
      r.exit_code = EXIT_OPERATIONAL;
      return r;
    }
    return check_device(*capi.value().store, device, options);
  }
  store::NamedStoreOptions so;
  so.block_size = 512;
  so.read_only = options.mode() == Repair::kNone;
  so.ceph = options.ceph;
  // Right after an unmount the daemon may still be writing its last checkpoint: wait for it.
  so.wait.on_wait = [&] { std::fprintf(stderr, "fsck: waiting for the vlunfs daemon that is releasing %s...\n", device.c_str()); };
  std::string detail;
  auto dev = store::open_named_store(device, so, &detail);
  if (!dev) {
    Report r;
    r.exit_code = EXIT_OPERATIONAL;
    if (!detail.empty()) {
      add(&r.findings, Check::device, Severity::error, detail);
      return r;
    }
    std::string what_to_do;
    if (dev.error().value() == EBUSY) {
      auto mountpoint = store::vlunfs_mountpoint_of(device);
      what_to_do = mountpoint ? " (it is mounted on " + *mountpoint + ": unmount it before fsck)"
                              : " (it is not mounted here, but another program holds it: mkfs, another fsck, a vlunfs "
                                "daemon that did not let go within 10 s, or one mounted in another mount namespace)";
    }
    add(&r.findings, Check::device, Severity::error, device + ": " + dev.error().message() + what_to_do);
    return r;
  }
  return check_device(*dev.value(), device, options);
}

}  // namespace vlunfs::fsck
