// fsck's check of a namespace against its geometry (fsck.h), in phases: the inodes on their own,
// the names, the unnamed inodes, the tree and link counts, the chunk maps against the data area,
// the sharing of chunks, the orphans, and the share reserve. Each phase reads what the phases
// before it collected and adds its findings to the report.

#include "tools/fsck.h"

#include "vlunfs/chunk_shift.h"
#include "vlunfs/sislite.h"
#include "vlunfs/vlun.h"
#include "vlunfs/zero_chunk.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <optional>
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

class NamespaceCheck {
 public:
  NamespaceCheck(meta::Namespace& ns, const meta::Geometry& g, Repair mode, std::vector<uint64_t>* freed,
                 const Progress& progress)
      : ns_(ns),
        g_(g),
        // Preen makes only the repairs that restore what the rest of the metadata already says
        // (link counts, '..', next_ino, orphans the next mount frees anyway); a repair that removes
        // or adds a name is left to -y, as e2fsck -p leaves such problems to a manual run.
        repair_(mode != Repair::kNone),
        change_names_(mode == Repair::kAll),
        freed_(freed),
        progress_(progress),
        zero_aun_(vlun::zero_chunk_aun(g.data_chunks())) {}

  Report run() {
    r_.chunks_total = g_.data_chunks();
    if (!sisl::chunk_shift_in_range(g_.chunk_shift)) error(Check::geometry, sisl::chunk_shift_refusal(g_.chunk_shift));
    root_ = ns_.find(meta::ROOT_INO);
    if (!root_ || type_of(*root_) != S_IFDIR) {
      error(Check::tree, "the root directory (inode 1) is missing or not a directory");
      return finish();
    }
    check_inode_fields();
    collect_names();
    link_unnamed_inodes();
    find_reachable();
    check_links();
    check_chunk_maps();
    check_sharing();
    remove_orphans();
    check_share_reserve();
    return finish();
  }

 private:
  void add(Check check, Severity severity, std::string text, Fix fix = Fix::none) {
    r_.findings.push_back({check, severity, std::move(text), false, fix});
  }
  void error(Check check, std::string what) { add(check, Severity::error, std::move(what)); }
  void fixed(Check check, std::string what) { add(check, Severity::repaired, std::move(what)); }
  // A defect that repair can fix: fixed (and said) with repair, an error without.
  void defect(Check check, const std::string& what, const std::string& fix) {
    if (repair_) {
      fixed(check, what + ": " + fix);
    } else {
      add(check, Severity::error, what, Fix::preen);
    }
  }
  // A defect that only -y repairs (it changes a name): with preen, an error that says so.
  void naming_defect(Check check, const std::string& what, const std::string& fix) {
    if (change_names_) {
      fixed(check, what + ": " + fix);
    } else {
      add(check, Severity::error, what + (repair_ ? " (not repaired when preening: fsck -y " + fix + ")" : ""), Fix::yes);
    }
  }
  Report finish() {
    if (r_.has_errors()) {
      r_.exit_code = EXIT_ERRORS_LEFT;
    } else if (r_.count(Severity::repaired) > 0) {
      r_.exit_code = EXIT_FIXED;
    }
    return std::move(r_);
  }

  void check_inode_fields();
  void collect_names();
  void link_unnamed_inodes();
  uint64_t make_lost_found();
  void find_reachable();
  void check_links();
  void check_directory_links(uint64_t ino, meta::Inode& inode);
  void check_chunk_maps();
  void check_lxt(uint64_t ino, const meta::Inode& inode);
  void check_sharing();
  void remove_orphans();
  void check_share_reserve();

  meta::Namespace& ns_;
  const meta::Geometry& g_;
  const bool repair_;
  const bool change_names_;
  std::vector<uint64_t>* freed_;
  const Progress& progress_;
  std::optional<Ticker> ticker_;  // over check_links and check_chunk_maps
  // The data area's last chunk is the zero chunk: never allocated, never written, mapped read-only
  // by any number of thin vLUNs for their unwritten chunks.
  const uint64_t zero_aun_;
  Report r_;

  // What the phases collect for the ones after them.
  meta::Inode* root_ = nullptr;
  uint64_t max_ino_ = 0;
  std::unordered_map<uint64_t, uint32_t> names_;     // ino -> directory entries naming it
  std::unordered_map<uint64_t, uint32_t> subdirs_;   // directory -> subdirectories
  std::unordered_map<uint64_t, uint64_t> named_by_;  // directory -> the directory naming it
  std::set<uint64_t> reached_;
  std::vector<uint64_t> orphans_;
  std::map<uint64_t, std::vector<std::pair<uint64_t, bool>>> owners_;  // aun -> (ino, writable)
};

// ---- Inode numbers and per-type fields ----
void NamespaceCheck::check_inode_fields() {
  for (auto& [ino, inode] : ns_.inodes) {
    max_ino_ = std::max(max_ino_, ino);
    if (inode.ino != ino) {
      error(Check::inode_fields, ino_str(ino) + ": stored under number " + std::to_string(ino) + " but says " +
                                     std::to_string(inode.ino));
    }
    const uint32_t type = type_of(inode);
    // FIFOs, sockets and device nodes (format 3) are names and attributes only, like symlinks.
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && !meta::is_special_file(inode.mode)) {
      error(Check::inode_fields, ino_str(ino) + ": unknown file type");
    }
    if (inode.rdev != 0 && type != S_IFCHR && type != S_IFBLK) {
      error(Check::inode_fields, ino_str(ino) + ": not a device node but has a device number");
    }
    if (meta::is_special_file(inode.mode) && inode.size != 0) error(Check::inode_fields, ino_str(ino) + ": special file with a size");
    if (type != S_IFREG && !inode.lxt.empty()) error(Check::inode_fields, ino_str(ino) + ": not a regular file but has a chunk map");
    if (type != S_IFDIR && !inode.entries.empty()) error(Check::inode_fields, ino_str(ino) + ": not a directory but has entries");
    if (type == S_IFLNK && (inode.symlink.empty() || inode.symlink.size() > meta::MAX_SYMLINK)) {
      error(Check::inode_fields, ino_str(ino) + ": symlink with an empty or too long target");
    }
  }
  if (max_ino_ >= ns_.next_ino) {
    defect(Check::inode_fields,
           "next inode number " + std::to_string(ns_.next_ino) + " is not above the highest inode " +
               std::to_string(max_ino_),
           "set to " + std::to_string(max_ino_ + 1));
    if (repair_) ns_.next_ino = max_ino_ + 1;
  }
}

// ---- Directory entries: names per inode, subdirectories per directory, who names each directory ----
void NamespaceCheck::collect_names() {
  for (auto& [ino, inode] : ns_.inodes) {
    if (type_of(inode) != S_IFDIR) continue;
    for (auto it = inode.entries.begin(); it != inode.entries.end();) {
      const auto& [name, child] = *it;
      meta::Inode* c = ns_.find(child);
      if (!c || child == meta::ROOT_INO) {
        const std::string what = "directory " + ino_str(ino) + ": entry '" + name + "' names " +
                                 (c ? std::string("the root") : "missing " + ino_str(child));
        naming_defect(Check::directory_entries, what, "removes the entry");
        it = change_names_ ? inode.entries.erase(it) : std::next(it);
        continue;
      }
      if (!valid_name(name)) error(Check::directory_entries, "directory " + ino_str(ino) + ": invalid entry name '" + name + "'");
      names_[child]++;
      if (type_of(*c) == S_IFDIR) {
        subdirs_[ino]++;
        if (named_by_.count(child)) error(Check::tree, "directory " + ino_str(child) + " has more than one name");
        named_by_[child] = ino;
      }
      ++it;
    }
  }
}

// ---- Inodes with links but no name: into /lost+found (as e2fsck does) rather than freed ----
void NamespaceCheck::link_unnamed_inodes() {
  std::vector<uint64_t> lost;
  for (auto& [ino, inode] : ns_.inodes) {
    if (type_of(inode) != S_IFDIR && inode.nlink > 0 && !names_.count(ino)) lost.push_back(ino);
  }
  if (lost.empty()) return;
  if (!change_names_) {
    for (uint64_t ino : lost) {
      add(Check::unnamed_inodes, Severity::error,
          ino_str(ino) + ": link count " + std::to_string(ns_.find(ino)->nlink) +
              " but no directory names it (fsck -y links it into /lost+found)",
          Fix::yes);
    }
    return;
  }
  const uint64_t lf_ino = make_lost_found();
  if (lf_ino == 0) {
    for (uint64_t ino : lost) {
      error(Check::unnamed_inodes, ino_str(ino) + ": has links but no name, and /lost+found is not a directory");
    }
    return;
  }
  meta::Inode& lf = *ns_.find(lf_ino);
  for (uint64_t ino : lost) {
    std::string name = "#" + std::to_string(ino);
    if (lf.entries.count(name)) {
      error(Check::unnamed_inodes, ino_str(ino) + ": has links but no name, and /lost+found/" + name + " is taken");
      continue;
    }
    lf.entries.emplace(name, ino);
    names_[ino] = 1;
    fixed(Check::unnamed_inodes, ino_str(ino) + ": had links but no name: linked as /lost+found/" + name);
  }
}

// The inode of /lost+found, created if the root has no such name; 0 if the name is not a directory.
uint64_t NamespaceCheck::make_lost_found() {
  auto it = root_->entries.find(kLostFound);
  if (it != root_->entries.end()) {
    const meta::Inode* existing = ns_.find(it->second);
    return existing && type_of(*existing) == S_IFDIR ? it->second : 0;
  }
  meta::Inode lf;
  const uint64_t lf_ino = lf.ino = std::max(ns_.next_ino, max_ino_ + 1);
  ns_.next_ino = lf.ino + 1;
  lf.mode = S_IFDIR | 0700;
  lf.nlink = 2;
  lf.parent = meta::ROOT_INO;
  lf.atime_ns = lf.mtime_ns = lf.ctime_ns = root_->mtime_ns;
  ns_.inodes.emplace(lf.ino, std::move(lf));
  root_ = ns_.find(meta::ROOT_INO);  // the map may have rehashed
  root_->entries.emplace(kLostFound, lf_ino);
  subdirs_[meta::ROOT_INO]++;
  named_by_[lf_ino] = meta::ROOT_INO;
  names_[lf_ino] = 1;
  fixed(Check::unnamed_inodes, "created /lost+found (" + ino_str(lf_ino) + ")");
  return lf_ino;
}

// ---- Reachability from the root ----
void NamespaceCheck::find_reachable() {
  reached_ = {meta::ROOT_INO};
  std::vector<uint64_t> todo{meta::ROOT_INO};
  while (!todo.empty()) {
    uint64_t d = todo.back();
    todo.pop_back();
    meta::Inode* dir = ns_.find(d);
    for (auto& [name, child] : dir->entries) {
      meta::Inode* c = ns_.find(child);
      if (c && reached_.insert(child).second && type_of(*c) == S_IFDIR) todo.push_back(child);
    }
  }
}

// ---- Link counts, parents; the orphans ----
void NamespaceCheck::check_links() {
  ticker_.emplace(progress_, 2 * ns_.inodes.size());
  for (auto& [ino, inode] : ns_.inodes) {
    ticker_->tick();
    const uint32_t type = type_of(inode);
    r_.inodes++;
    if (type == S_IFDIR) {
      check_directory_links(ino, inode);
      continue;
    }
    if (type == S_IFLNK) r_.symlinks++;
    if (type == S_IFREG) r_.files++;
    const uint32_t want = names_.count(ino) ? names_[ino] : 0;
    if (want == 0) {
      orphans_.push_back(ino);  // nlink is 0 here: the others went to lost+found (or are errors)
      continue;
    }
    if (inode.nlink != want) {
      defect(Check::link_counts,
             ino_str(ino) + ": link count is " + std::to_string(inode.nlink) + ", but " + std::to_string(want) +
                 " names point to it",
             "set to " + std::to_string(want));
      if (repair_) inode.nlink = want;
    }
    if (!reached_.count(ino)) error(Check::tree, ino_str(ino) + ": not reachable from the root");
  }
}

void NamespaceCheck::check_directory_links(uint64_t ino, meta::Inode& inode) {
  r_.directories++;
  const uint32_t want = 2 + subdirs_[ino];
  if (inode.nlink != want) {
    defect(Check::link_counts,
           ino_str(ino) + ": directory link count is " + std::to_string(inode.nlink) + ", should be " +
               std::to_string(want),
           "set to " + std::to_string(want));
    if (repair_) inode.nlink = want;
  }
  const uint64_t parent = ino == meta::ROOT_INO ? meta::ROOT_INO : (named_by_.count(ino) ? named_by_[ino] : 0);
  if (parent != 0 && inode.parent != parent) {
    defect(Check::tree,
           ino_str(ino) + ": '..' points to " + std::to_string(inode.parent) + " but the directory is named in " +
               std::to_string(parent),
           "'..' set to " + std::to_string(parent));
    if (repair_) inode.parent = parent;
  }
  if (!reached_.count(ino)) error(Check::tree, ino_str(ino) + ": directory not reachable from the root");
}

// ---- Chunk maps: sizes, and every entry against the data area, as the allocator will see it ----
void NamespaceCheck::check_chunk_maps() {
  for (auto& [ino, inode] : ns_.inodes) {
    ticker_->tick();
    if (type_of(inode) != S_IFREG) continue;
    if (inode.size > inode.lxt.size() * g_.chunk_bytes()) {
      error(Check::chunk_maps, ino_str(ino) + ": size " + std::to_string(inode.size) + " is beyond its " +
                                   std::to_string(inode.lxt.size()) + " chunks of " + std::to_string(g_.chunk_bytes()) +
                                   " bytes");
    }
    // The bound that a live resize and journal replay enforce (meta::max_lxt_entries): a thin vLUN
    // may promise more chunks than the data area has, since its unwritten ones map the zero chunk;
    // that every chunk it maps really is in the data area is checked entry by entry below.
    if (inode.lxt.size() > meta::max_lxt_entries(g_)) {
      error(Check::chunk_maps, ino_str(ino) + ": " + std::to_string(inode.lxt.size()) + " chunks, more than the " +
                                   std::to_string(meta::max_lxt_entries(g_)) + " a vLUN may have (" +
                                   std::to_string(meta::MAX_OVERCOMMIT) + " times the data area's " +
                                   std::to_string(g_.data_chunks()) + ", at most 2^32 - 1)");
    }
    check_lxt(ino, inode);
  }
}

// Each LXT entry: inside the data area, well formed; the owners of each chunk, for check_sharing.
void NamespaceCheck::check_lxt(uint64_t ino, const meta::Inode& inode) {
  for (size_t i = 0; i < inode.lxt.size(); ++i) {
    const uint64_t e = inode.lxt[i];
    const uint64_t aun = sisl::lxt_aun(e);
    const std::string where = ino_str(ino) + " chunk " + std::to_string(i);
    if (aun >= g_.data_chunks()) {
      error(Check::chunk_maps, where + ": maps physical chunk " + std::to_string(aun) + " outside the data area (" +
                                   std::to_string(g_.data_chunks()) + " chunks)");
      continue;
    }
    if (!(e & sisl::LXT_PERM_READ)) error(Check::chunk_maps, where + ": LXT entry without read permission");
    if (sisl::lxt_ports(e) == 0) error(Check::chunk_maps, where + ": LXT entry with no port");
    if (e & kLxtReservedBits) error(Check::chunk_maps, where + ": LXT entry with reserved bits 7..6 set");
    if (aun == zero_aun_) {
      if (e & sisl::LXT_PERM_WRITE) {
        error(Check::chunk_maps, where + ": maps the zero chunk " + std::to_string(aun) + " writable");
      }
      r_.zero_maps++;
      continue;
    }
    owners_[aun].push_back({ino, (e & sisl::LXT_PERM_WRITE) != 0});
  }
}

// ---- Sharing: a chunk named by several entries is mapped read-only by all, by at most 256 ----
void NamespaceCheck::check_sharing() {
  for (auto& [aun, list] : owners_) {
    r_.chunks_used++;
    if (list.size() == 1) continue;
    r_.chunks_shared++;
    if (list.size() > kMaxOwners) {
      error(Check::sharing, "chunk " + std::to_string(aun) + ": " + std::to_string(list.size()) +
                                " owners, beyond the " + std::to_string(kMaxOwners) + " a chunk can have");
    }
    for (auto& [ino, writable] : list) {
      if (writable) {
        error(Check::sharing, "chunk " + std::to_string(aun) + ": shared by " + std::to_string(list.size()) +
                                  " map entries, but " + ino_str(ino) +
                                  " maps it writable (a shared chunk must be mapped read-only, for copy-on-write)");
        break;
      }
    }
  }
}

// ---- Orphans: unlinked while open when the daemon stopped. Not an error: the next mount frees them. ----
void NamespaceCheck::remove_orphans() {
  r_.orphans = orphans_.size();
  for (uint64_t ino : orphans_) {
    meta::Inode& inode = ns_.inodes.at(ino);
    if (!repair_) {
      add(Check::orphans, Severity::note,
          ino_str(ino) + ": orphan (unlinked while open) holding " + std::to_string(inode.lxt.size()) +
              " chunks; freed at the next mount or by fsck -p or -y",
          Fix::preen);
      continue;
    }
    uint64_t released = 0;
    for (uint64_t e : inode.lxt) {
      const uint64_t aun = sisl::lxt_aun(e);
      auto it = owners_.find(aun);
      if (it == owners_.end()) continue;  // outside the data area: reported above
      auto& list = it->second;
      auto own = std::find_if(list.begin(), list.end(), [&](const auto& owner) { return owner.first == ino; });
      if (own != list.end()) list.erase(own);
      if (list.empty()) {
        // Its last owner: the chunk returns to the pool, and is zeroed before anyone gets it.
        owners_.erase(it);
        r_.chunks_used--;
        released++;
        if (freed_) freed_->push_back(aun);
      }
    }
    fixed(Check::orphans, ino_str(ino) + ": orphan (no name) removed, " + std::to_string(released) + " chunks freed");
    ns_.inodes.erase(ino);
  }
  // Free: every chunk no map names, but the zero chunk.
  const uint64_t allocatable = vlun::allocatable_chunks(r_.chunks_total);
  r_.chunks_free = allocatable >= r_.chunks_used ? allocatable - r_.chunks_used : 0;
}

// ---- The share reserve (docs/format.md): the free chunks must cover every chunk a thick,
// writable vLUN may still need to break a share (min(thick owners, owners - 1) per shared
// chunk) or to fill an entry that maps the zero chunk. Counted here from the maps alone, apart
// from the daemon's own accounting, which derives the same number at mount. ----
void NamespaceCheck::check_share_reserve() {
  auto thick_writable = [&](uint64_t ino) {
    const meta::Inode* inode = ns_.find(ino);
    return inode && (inode->flags & (meta::INODE_FLAG_THIN | meta::INODE_FLAG_READONLY)) == 0;
  };
  for (auto& [aun, list] : owners_) {
    if (list.size() < 2) continue;
    const uint64_t thick = static_cast<uint64_t>(
        std::count_if(list.begin(), list.end(), [&](const auto& owner) { return thick_writable(owner.first); }));
    r_.chunks_reserved += std::min<uint64_t>(thick, list.size() - 1);
  }
  for (auto& [ino, inode] : ns_.inodes) {
    if (type_of(inode) != S_IFREG || !thick_writable(ino)) continue;
    for (uint64_t e : inode.lxt) {
      if (sisl::lxt_aun(e) == zero_aun_) r_.chunks_reserved++;
    }
  }
  if (r_.chunks_reserved > r_.chunks_free) {
    error(Check::share_reserve,
          "thick vLUNs may need " + std::to_string(r_.chunks_reserved) + " chunks to break their shares, but only " +
              std::to_string(r_.chunks_free) + " are free: their writes to shared chunks may fail with ENOSPC; " +
              "remove copies, clones or snapshots of thick vLUNs, or other files, to free " +
              std::to_string(r_.chunks_reserved - r_.chunks_free) + " chunks");
  }
}

}  // namespace

std::vector<std::string> Report::texts(Severity severity) const {
  std::vector<std::string> out;
  for (const Finding& f : findings) {
    if (f.severity == severity) out.push_back(f.text);
  }
  return out;
}

size_t Report::count(Severity severity) const {
  return static_cast<size_t>(
      std::count_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == severity; }));
}

std::vector<Finding> Report::of(Check check, Severity severity) const {
  std::vector<Finding> out;
  for (const Finding& f : findings) {
    if (f.check == check && f.severity == severity) out.push_back(f);
  }
  return out;
}

Report check_namespace(meta::Namespace& ns, const meta::Geometry& g, Repair mode, std::vector<uint64_t>* freed,
                       const Progress& progress) {
  return NamespaceCheck(ns, g, mode, freed, progress).run();
}

Report check_namespace(meta::Namespace& ns, const meta::Geometry& g, bool repair, std::vector<uint64_t>* freed,
                       const Progress& progress) {
  return check_namespace(ns, g, repair ? Repair::kAll : Repair::kNone, freed, progress);
}

}  // namespace vlunfs::fsck
