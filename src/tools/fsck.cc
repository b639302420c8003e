#include "tools/fsck.h"

#include "afu/capi/device.h"
#include "store/rbd/named_store.h"
#include "vlunfs/chunk_shift.h"
#include "vlunfs/image_release.h"
#include "vlunfs/meta/inspection.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"
#include "vlunfs/vlun.h"
#include "vlunfs/zero_chunk.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

namespace vlunfs::fsck {

namespace {

std::string ino_str(uint64_t ino) { return "inode " + std::to_string(ino); }

uint32_t type_of(const meta::Inode& inode) { return inode.mode & S_IFMT; }

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= meta::MAX_NAME && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

constexpr const char* kLostFound = "lost+found";
constexpr uint64_t kMaxOwners = 256;  // the owner plus 255 clones: the allocator's 8-bit counter
constexpr uint64_t kLxtReservedBits = 0xC0;  // v-bits 7..6 (spec §4.5)

// Reports progress at most every `step` units of work, and once at the end.
class Ticker {
 public:
  Ticker(const Progress& progress, uint64_t total) : progress_(progress), total_(total) {}
  void tick() {
    ++done_;
    if (progress_ && (done_ % 4096 == 0 || done_ == total_)) progress_(done_, total_);
  }

 private:
  const Progress& progress_;
  uint64_t total_;
  uint64_t done_ = 0;
};

}  // namespace

Report check_namespace(meta::Namespace& ns, const meta::Geometry& g, bool repair, std::vector<uint64_t>* freed,
                       const Progress& progress) {
  return check_namespace(ns, g, repair ? Repair::kAll : Repair::kNone, freed, progress);
}

Report check_namespace(meta::Namespace& ns, const meta::Geometry& g, Repair mode, std::vector<uint64_t>* freed,
                       const Progress& progress) {
  Report r;
  // Preen makes only the repairs that restore what the rest of the metadata already says (link
  // counts, '..', next_ino, orphans the next mount frees anyway); a repair that removes or adds a
  // name is left to -y, as e2fsck -p leaves such problems to a manual run.
  const bool repair = mode != Repair::kNone;
  const bool change_names = mode == Repair::kAll;
  r.chunks_total = g.data_chunks();
  auto error = [&](std::string what) { r.errors.push_back(std::move(what)); };
  auto fixed = [&](std::string what) { r.repairs.push_back(std::move(what)); };
  // A defect that repair can fix: fixed (and said) with repair, an error without.
  auto defect = [&](const std::string& what, const std::string& fix) {
    if (repair) {
      fixed(what + ": " + fix);
    } else {
      error(what);
    }
  };
  // A defect that only -y repairs (it changes a name): with preen, an error that says so.
  auto naming_defect = [&](const std::string& what, const std::string& fix) {
    if (change_names) {
      fixed(what + ": " + fix);
    } else {
      error(what + (repair ? " (not repaired when preening: fsck -y " + fix + ")" : ""));
    }
  };
  auto finish = [&]() {
    if (!r.errors.empty()) {
      r.exit_code = EXIT_ERRORS_LEFT;
    } else if (!r.repairs.empty()) {
      r.exit_code = EXIT_FIXED;
    }
    return r;
  };

  if (!sisl::chunk_shift_in_range(g.chunk_shift)) error(sisl::chunk_shift_refusal(g.chunk_shift));
  meta::Inode* root = ns.find(meta::ROOT_INO);
  if (!root || type_of(*root) != S_IFDIR) {
    error("the root directory (inode 1) is missing or not a directory");
    return finish();
  }

  // ---- Inode numbers and per-type fields ----
  uint64_t max_ino = 0;
  for (auto& [ino, inode] : ns.inodes) {
    max_ino = std::max(max_ino, ino);
    if (inode.ino != ino) error(ino_str(ino) + ": stored under number " + std::to_string(ino) + " but says " + std::to_string(inode.ino));
    const uint32_t type = type_of(inode);
    // FIFOs, sockets and device nodes (format 3) are names and attributes only, like symlinks.
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && !meta::is_special_file(inode.mode)) {
      error(ino_str(ino) + ": unknown file type");
    }
    if (inode.rdev != 0 && type != S_IFCHR && type != S_IFBLK) error(ino_str(ino) + ": not a device node but has a device number");
    if (meta::is_special_file(inode.mode) && inode.size != 0) error(ino_str(ino) + ": special file with a size");
    if (type != S_IFREG && !inode.lxt.empty()) error(ino_str(ino) + ": not a regular file but has a chunk map");
    if (type != S_IFDIR && !inode.entries.empty()) error(ino_str(ino) + ": not a directory but has entries");
    if (type == S_IFLNK && (inode.symlink.empty() || inode.symlink.size() > meta::MAX_SYMLINK)) {
      error(ino_str(ino) + ": symlink with an empty or too long target");
    }
  }
  if (max_ino >= ns.next_ino) {
    defect("next inode number " + std::to_string(ns.next_ino) + " is not above the highest inode " + std::to_string(max_ino),
           "set to " + std::to_string(max_ino + 1));
    if (repair) ns.next_ino = max_ino + 1;
  }

  // ---- Directory entries: names per inode, subdirectories per directory, who names each directory ----
  std::unordered_map<uint64_t, uint32_t> names;
  std::unordered_map<uint64_t, uint32_t> subdirs;
  std::unordered_map<uint64_t, uint64_t> named_by;
  for (auto& [ino, inode] : ns.inodes) {
    if (type_of(inode) != S_IFDIR) continue;
    for (auto it = inode.entries.begin(); it != inode.entries.end();) {
      const auto& [name, child] = *it;
      meta::Inode* c = ns.find(child);
      if (!c || child == meta::ROOT_INO) {
        const std::string what = "directory " + ino_str(ino) + ": entry '" + name + "' names " +
                                 (c ? std::string("the root") : "missing " + ino_str(child));
        naming_defect(what, "removes the entry");
        if (change_names) {
          it = inode.entries.erase(it);
          continue;
        }
        ++it;
        continue;
      }
      if (!valid_name(name)) error("directory " + ino_str(ino) + ": invalid entry name '" + name + "'");
      names[child]++;
      if (type_of(*c) == S_IFDIR) {
        subdirs[ino]++;
        if (named_by.count(child)) error("directory " + ino_str(child) + " has more than one name");
        named_by[child] = ino;
      }
      ++it;
    }
  }

  // ---- Inodes with links but no name: into /lost+found (as e2fsck does) rather than freed ----
  std::vector<uint64_t> lost;
  for (auto& [ino, inode] : ns.inodes) {
    if (type_of(inode) != S_IFDIR && inode.nlink > 0 && !names.count(ino)) lost.push_back(ino);
  }
  if (!lost.empty()) {
    if (!change_names) {
      for (uint64_t ino : lost) {
        error(ino_str(ino) + ": link count " + std::to_string(ns.find(ino)->nlink) +
              " but no directory names it (fsck -y links it into /lost+found)");
      }
    } else {
      uint64_t lf_ino = 0;
      auto it = root->entries.find(kLostFound);
      if (it != root->entries.end() && ns.find(it->second) && type_of(*ns.find(it->second)) == S_IFDIR) {
        lf_ino = it->second;
      } else if (it == root->entries.end()) {
        meta::Inode lf;
        lf.ino = lf_ino = std::max(ns.next_ino, max_ino + 1);
        ns.next_ino = lf.ino + 1;
        lf.mode = S_IFDIR | 0700;
        lf.nlink = 2;
        lf.parent = meta::ROOT_INO;
        lf.atime_ns = lf.mtime_ns = lf.ctime_ns = root->mtime_ns;
        ns.inodes.emplace(lf.ino, std::move(lf));
        root = ns.find(meta::ROOT_INO);  // the map may have rehashed
        root->entries.emplace(kLostFound, lf_ino);
        subdirs[meta::ROOT_INO]++;
        named_by[lf_ino] = meta::ROOT_INO;
        names[lf_ino] = 1;
        fixed("created /lost+found (" + ino_str(lf_ino) + ")");
      }
      if (lf_ino == 0) {
        for (uint64_t ino : lost) error(ino_str(ino) + ": has links but no name, and /lost+found is not a directory");
      } else {
        meta::Inode& lf = *ns.find(lf_ino);
        for (uint64_t ino : lost) {
          std::string name = "#" + std::to_string(ino);
          if (lf.entries.count(name)) {
            error(ino_str(ino) + ": has links but no name, and /lost+found/" + name + " is taken");
            continue;
          }
          lf.entries.emplace(name, ino);
          names[ino] = 1;
          fixed(ino_str(ino) + ": had links but no name: linked as /lost+found/" + name);
        }
      }
    }
  }

  // ---- Reachability from the root ----
  std::set<uint64_t> reached{meta::ROOT_INO};
  std::vector<uint64_t> todo{meta::ROOT_INO};
  while (!todo.empty()) {
    uint64_t d = todo.back();
    todo.pop_back();
    meta::Inode* dir = ns.find(d);
    for (auto& [name, child] : dir->entries) {
      meta::Inode* c = ns.find(child);
      if (c && reached.insert(child).second && type_of(*c) == S_IFDIR) todo.push_back(child);
    }
  }

  // ---- Link counts, parents, sizes ----
  Ticker ticker(progress, 2 * ns.inodes.size());
  std::vector<uint64_t> orphans;
  for (auto& [ino, inode] : ns.inodes) {
    ticker.tick();
    const uint32_t type = type_of(inode);
    r.inodes++;
    if (type == S_IFDIR) {
      r.directories++;
      const uint32_t want = 2 + subdirs[ino];
      if (inode.nlink != want) {
        defect(ino_str(ino) + ": directory link count is " + std::to_string(inode.nlink) + ", should be " +
                   std::to_string(want),
               "set to " + std::to_string(want));
        if (repair) inode.nlink = want;
      }
      const uint64_t parent = ino == meta::ROOT_INO ? meta::ROOT_INO : (named_by.count(ino) ? named_by[ino] : 0);
      if (parent != 0 && inode.parent != parent) {
        defect(ino_str(ino) + ": '..' points to " + std::to_string(inode.parent) + " but the directory is named in " +
                   std::to_string(parent),
               "'..' set to " + std::to_string(parent));
        if (repair) inode.parent = parent;
      }
      if (!reached.count(ino)) error(ino_str(ino) + ": directory not reachable from the root");
      continue;
    }
    if (type == S_IFLNK) r.symlinks++;
    if (type == S_IFREG) r.files++;
    const uint32_t want = names.count(ino) ? names[ino] : 0;
    if (want == 0) {
      orphans.push_back(ino);  // nlink is 0 here: the others went to lost+found (or are errors)
      continue;
    }
    if (inode.nlink != want) {
      defect(ino_str(ino) + ": link count is " + std::to_string(inode.nlink) + ", but " + std::to_string(want) +
                 " names point to it",
             "set to " + std::to_string(want));
      if (repair) inode.nlink = want;
    }
    if (!reached.count(ino)) error(ino_str(ino) + ": not reachable from the root");
  }

  // ---- Chunk maps ----
  // The data area's last chunk is the zero chunk: never allocated, never written, mapped read-only
  // by any number of thin vLUNs for their unwritten chunks.
  const uint64_t zero_aun = vlun::zero_chunk_aun(g.data_chunks());
  std::map<uint64_t, std::vector<std::pair<uint64_t, bool>>> owners;  // aun -> (ino, writable)
  for (auto& [ino, inode] : ns.inodes) {
    ticker.tick();
    if (type_of(inode) != S_IFREG) continue;
    if (inode.size > inode.lxt.size() * g.chunk_bytes()) {
      error(ino_str(ino) + ": size " + std::to_string(inode.size) + " is beyond its " + std::to_string(inode.lxt.size()) +
            " chunks of " + std::to_string(g.chunk_bytes()) + " bytes");
    }
    // The bound that a live resize and journal replay enforce (meta::max_lxt_entries): a thin vLUN
    // may promise more chunks than the data area has, since its unwritten ones map the zero chunk;
    // that every chunk it maps really is in the data area is checked entry by entry below.
    if (inode.lxt.size() > meta::max_lxt_entries(g)) {
      error(ino_str(ino) + ": " + std::to_string(inode.lxt.size()) + " chunks, more than the " +
            std::to_string(meta::max_lxt_entries(g)) + " a vLUN may have (" + std::to_string(meta::MAX_OVERCOMMIT) +
            " times the data area's " + std::to_string(g.data_chunks()) + ", at most 2^32 - 1)");
    }
    for (size_t i = 0; i < inode.lxt.size(); ++i) {
      const uint64_t e = inode.lxt[i];
      const uint64_t aun = sisl::lxt_aun(e);
      const std::string where = ino_str(ino) + " chunk " + std::to_string(i);
      if (aun >= g.data_chunks()) {
        error(where + ": maps physical chunk " + std::to_string(aun) + " outside the data area (" +
              std::to_string(g.data_chunks()) + " chunks)");
        continue;
      }
      if (!(e & sisl::LXT_PERM_READ)) error(where + ": LXT entry without read permission");
      if (sisl::lxt_ports(e) == 0) error(where + ": LXT entry with no port");
      if (e & kLxtReservedBits) error(where + ": LXT entry with reserved bits 7..6 set");
      if (aun == zero_aun) {
        if (e & sisl::LXT_PERM_WRITE) error(where + ": maps the zero chunk " + std::to_string(aun) + " writable");
        r.zero_maps++;
        continue;
      }
      owners[aun].push_back({ino, (e & sisl::LXT_PERM_WRITE) != 0});
    }
  }
  for (auto& [aun, list] : owners) {
    r.chunks_used++;
    if (list.size() == 1) continue;
    r.chunks_shared++;
    if (list.size() > kMaxOwners) {
      error("chunk " + std::to_string(aun) + ": " + std::to_string(list.size()) + " owners, beyond the " +
            std::to_string(kMaxOwners) + " a chunk can have");
    }
    for (auto& [ino, writable] : list) {
      if (writable) {
        error("chunk " + std::to_string(aun) + ": shared by " + std::to_string(list.size()) + " map entries, but " +
              ino_str(ino) + " maps it writable (a shared chunk must be mapped read-only, for copy-on-write)");
        break;
      }
    }
  }

  // ---- Orphans: unlinked while open when the daemon stopped. Not an error: the next mount frees them. ----
  r.orphans = orphans.size();
  for (uint64_t ino : orphans) {
    meta::Inode& inode = ns.inodes.at(ino);
    if (!repair) {
      r.notes.push_back(ino_str(ino) + ": orphan (unlinked while open) holding " + std::to_string(inode.lxt.size()) +
                        " chunks; freed at the next mount or by fsck -p or -y");
      continue;
    }
    uint64_t released = 0;
    for (uint64_t e : inode.lxt) {
      const uint64_t aun = sisl::lxt_aun(e);
      auto it = owners.find(aun);
      if (it == owners.end()) continue;  // outside the data area: reported above
      auto& list = it->second;
      for (auto o = list.begin(); o != list.end(); ++o) {
        if (o->first == ino) {
          list.erase(o);
          break;
        }
      }
      if (list.empty()) {
        // Its last owner: the chunk returns to the pool, and is zeroed before anyone gets it.
        owners.erase(it);
        r.chunks_used--;
        released++;
        if (freed) freed->push_back(aun);
      }
    }
    fixed(ino_str(ino) + ": orphan (no name) removed, " + std::to_string(released) + " chunks freed");
    ns.inodes.erase(ino);
  }
  // Free: every chunk no map names, but the zero chunk.
  const uint64_t allocatable = vlun::allocatable_chunks(r.chunks_total);
  r.chunks_free = allocatable >= r.chunks_used ? allocatable - r.chunks_used : 0;

  // ---- The share reserve (docs/format.md): the free chunks must cover every chunk a thick,
  // writable vLUN may still need to break a share (min(thick owners, owners - 1) per shared
  // chunk) or to fill an entry that maps the zero chunk. Counted here from the maps alone, apart
  // from the daemon's own accounting, which derives the same number at mount. ----
  auto thick_writable = [&](uint64_t ino) {
    const meta::Inode* inode = ns.find(ino);
    return inode && (inode->flags & (meta::INODE_FLAG_THIN | meta::INODE_FLAG_READONLY)) == 0;
  };
  for (auto& [aun, list] : owners) {
    if (list.size() < 2) continue;
    const uint64_t thick = static_cast<uint64_t>(
        std::count_if(list.begin(), list.end(), [&](const auto& owner) { return thick_writable(owner.first); }));
    r.chunks_reserved += std::min<uint64_t>(thick, list.size() - 1);
  }
  for (auto& [ino, inode] : ns.inodes) {
    if (type_of(inode) != S_IFREG || !thick_writable(ino)) continue;
    for (uint64_t e : inode.lxt) {
      if (sisl::lxt_aun(e) == zero_aun) r.chunks_reserved++;
    }
  }
  if (r.chunks_reserved > r.chunks_free) {
    error("thick vLUNs may need " + std::to_string(r.chunks_reserved) + " chunks to break their shares, but only " +
          std::to_string(r.chunks_free) + " are free: their writes to shared chunks may fail with ENOSPC; remove " +
          "copies, clones or snapshots of thick vLUNs, or other files, to free " +
          std::to_string(r.chunks_reserved - r.chunks_free) + " chunks");
  }
  return finish();
}

namespace {

void show_progress(const char* what, uint64_t done, uint64_t total) {
  std::fprintf(stderr, "\rfsck: %s %llu/%llu (%llu%%)%s", what, static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total),
               static_cast<unsigned long long>(total ? done * 100 / total : 100), done == total ? "\n" : "");
}

bool is_metadata_problem(const std::string& problem) {
  // inspect_metadata() reports these structures itself (with the same facts); open()'s words for
  // them would only repeat it. What open() alone sees (journal replay, UUID mismatch) is kept.
  return problem.rfind("superblock copy ", 0) == 0 || problem.rfind("checkpoint of generation ", 0) == 0;
}

// Sorts what inspect_metadata() found into errors and notes. `used` is the superblock copy open()
// chose (-1 if none). A checkpoint slot that belongs to the *older* valid superblock copy and does
// not check out is what an interrupted checkpoint leaves behind (it writes that slot first, then
// that copy): normal after a crash, so a note; the next checkpoint rewrites it.
void sort_inspection(const meta::MetadataInspection& in, int used, std::vector<std::string>* errors,
                     std::vector<std::string>* notes, bool* fallback_lost) {
  for (int i = 0; i < 2; i++) {
    const meta::MetadataCopyReport& sb = in.superblocks[i];
    if (!sb.valid) {
      errors->push_back("superblock copy " + std::to_string(i) + " at byte " + std::to_string(sb.offset) + ": " + sb.problem);
    }
  }
  for (int i = 0; i < 2; i++) {
    const meta::MetadataCopyReport& slot = in.checkpoints[i];
    if (!in.superblocks[i].valid || slot.valid) continue;
    const std::string what = "checkpoint slot " + std::to_string(i) + " (generation " + std::to_string(slot.generation) +
                             ", at byte " + std::to_string(slot.offset) + "): " + slot.problem;
    const bool older = used >= 0 && used != i && in.superblocks[used].generation > slot.generation;
    if (older) {
      notes->push_back(what + "; it is the fallback of the older superblock copy, as an interrupted checkpoint leaves it "
                              "(the next checkpoint, or fsck -p or -y, rewrites it)");
      *fallback_lost = true;
    } else {
      errors->push_back(what);
    }
  }
  if (in.copies_disagree) errors->push_back("the two superblock copies describe different file systems (geometry or UUID)");
}

}  // namespace

Report check_device(store::BlockStore& device, const std::string& name, const Options& options) {
  Report r;
  if (options.progress) std::fprintf(stderr, "fsck: reading the superblocks and checkpoints of %s\n", name.c_str());

  // ---- Every superblock copy and checkpoint slot, each on its own ----
  meta::MetadataInspection inspection = meta::inspect_metadata(device);
  if (inspection.superblocks[0].absent && inspection.superblocks[1].absent) {
    r.errors.push_back(name + ": no vlunfs superblock at byte 0 or byte 4096: not formatted with vlunfs");
    r.exit_code = EXIT_OPERATIONAL;
    return r;
  }

  // ---- The state a mount would see ----
  if (options.progress) std::fprintf(stderr, "fsck: loading the metadata and replaying the journal\n");
  const Repair mode = options.mode();
  meta::OpenOptions mo;
  mo.read_only = mode == Repair::kNone;
  meta::OpenReport report;
  std::string why;
  auto store = meta::MetaStore::open(device, mo, &report, &why);
  std::vector<std::string> metadata_errors, notes;
  bool fallback_lost = false;
  sort_inspection(inspection, store ? report.superblock_used : -1, &metadata_errors, &notes, &fallback_lost);
  if (!store) {
    r.errors = metadata_errors;
    r.errors.push_back(name + ": " + (why.empty() ? store.error().message() : why));
    r.errors.push_back("no usable superblock and checkpoint: the device cannot be mounted, and fsck cannot repair it");
    r.exit_code = (store.error().value() == EIO || inspection.read_error) ? EXIT_OPERATIONAL : EXIT_ERRORS_LEFT;
    return r;
  }
  for (const std::string& p : report.problems) {
    if (!is_metadata_problem(p)) metadata_errors.push_back(p);
  }
  notes.insert(notes.begin(), "superblock copy " + std::to_string(report.superblock_used) + ", generation " +
                                  std::to_string(report.generation) +
                                  (report.fell_back ? " (a fallback: the newer metadata is unusable)" : "") + ", " +
                                  std::to_string(report.records_replayed) + " journal records replayed (stopped at: " +
                                  report.journal_stop_reason + ")");

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
    if (!check_namespace(trial, g, Repair::kPreen).errors.empty()) {
      Report left = check_namespace(m.ns(), g, Repair::kNone, nullptr, progress);
      left.notes.insert(left.notes.begin(), notes.begin(), notes.end());
      left.errors.insert(left.errors.begin(), metadata_errors.begin(), metadata_errors.end());
      left.errors.push_back("not preened: a problem above needs fsck -y (vlunctl fsck -y), nothing was changed");
      left.exit_code = EXIT_ERRORS_LEFT;
      return left;
    }
  }
  Report checked = check_namespace(m.ns(), g, mode, &freed, progress);
  checked.notes.insert(checked.notes.begin(), notes.begin(), notes.end());

  const bool rewrite =
      mode != Repair::kNone && (!checked.repairs.empty() || !metadata_errors.empty() || fallback_lost);
  if (!rewrite) {
    checked.errors.insert(checked.errors.begin(), metadata_errors.begin(), metadata_errors.end());
    checked.exit_code = !checked.errors.empty() ? EXIT_ERRORS_LEFT : checked.repairs.empty() ? EXIT_CLEAN : EXIT_FIXED;
    return checked;
  }

  // ---- Repair: zero the freed chunks, then one fresh checkpoint ----
  // The checkpoint goes to the slot and superblock copy that the state in use does not occupy,
  // which is where the damage is when one copy is damaged; the copy in use is never overwritten.
  for (uint64_t aun : freed) {
    if (auto ec = device.discard(g.data_offset + aun * g.chunk_bytes(), g.chunk_bytes())) {
      checked.errors.push_back("zeroing freed chunk " + std::to_string(aun) + " failed: " + ec.message());
    }
  }
  if (auto ec = m.checkpoint()) {
    checked.errors.insert(checked.errors.begin(), metadata_errors.begin(), metadata_errors.end());
    checked.errors.push_back("writing the repaired metadata failed: " + ec.message());
    checked.exit_code = EXIT_OPERATIONAL;
    return checked;
  }
  for (const std::string& e : metadata_errors) checked.repairs.push_back(e + ": superseded");
  if (!metadata_errors.empty() || fallback_lost) {
    checked.repairs.push_back("wrote a fresh checkpoint (and superblock copy) of the state in use");
  }
  if (auto ec = device.flush()) checked.errors.push_back("flushing the device failed: " + ec.message());
  // Proof that the repair holds: the device must now inspect clean.
  meta::MetadataInspection after = meta::inspect_metadata(device);
  for (const std::string& p : after.problems) checked.errors.push_back("after repair: " + p);
  checked.exit_code = checked.errors.empty() ? EXIT_FIXED : EXIT_ERRORS_LEFT;
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
      r.errors.push_back(why);
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
    std::string what_to_do;
    if (!detail.empty()) {
      r.errors.push_back(detail);
      r.exit_code = EXIT_OPERATIONAL;
      return r;
    }
    if (dev.error().value() == EBUSY) {
      auto mountpoint = store::vlunfs_mountpoint_of(device);
      what_to_do = mountpoint ? " (it is mounted on " + *mountpoint + ": unmount it before fsck)"
                              : " (it is not mounted here, but another program holds it: mkfs, another fsck, a vlunfs "
                                "daemon that did not let go within 10 s, or one mounted in another mount namespace)";
    }
    r.errors.push_back(device + ": " + dev.error().message() + what_to_do);
    r.exit_code = EXIT_OPERATIONAL;
    return r;
  }
  return check_device(*dev.value(), device, options);
}

}  // namespace vlunfs::fsck
