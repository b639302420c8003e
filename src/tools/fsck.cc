#include "vlunfs/fsck.h"

#include "vlunfs/sislite.h"
#include "vlunfs/store.h"

#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

namespace vlunfs::fsck {

namespace {

std::string ino_str(uint64_t ino) { return "inode " + std::to_string(ino); }

}  // namespace

Report check_namespace(meta::Namespace& ns, const meta::Geometry& g, bool repair, std::vector<uint64_t>* freed) {
  Report r;
  r.chunks_total = g.data_chunks();
  auto error = [&](std::string what) { r.errors.push_back(std::move(what)); };
  auto fixed = [&](std::string what) { r.repairs.push_back(std::move(what)); };

  meta::Inode* root = ns.find(meta::ROOT_INO);
  if (!root || (root->mode & S_IFMT) != S_IFDIR) {
    error("the root directory (inode 1) is missing or not a directory");
    r.exit_code = EXIT_ERRORS_LEFT;
    return r;
  }

  // Names per inode, subdirectories per directory, and who names each directory.
  std::unordered_map<uint64_t, uint32_t> names;
  std::unordered_map<uint64_t, uint32_t> subdirs;
  std::unordered_map<uint64_t, uint64_t> named_by;
  for (auto& [ino, inode] : ns.inodes) {
    if (ino >= ns.next_ino) error(ino_str(ino) + ": number not below next_ino " + std::to_string(ns.next_ino));
    uint32_t type = inode.mode & S_IFMT;
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK) error(ino_str(ino) + ": unknown file type");
    if (type != S_IFDIR) continue;
    for (auto& [name, child] : inode.entries) {
      meta::Inode* c = ns.find(child);
      if (!c) {
        error(ino_str(ino) + ": entry '" + name + "' names missing " + ino_str(child));
        continue;
      }
      if (name.empty() || name.size() > meta::MAX_NAME || name.find('/') != std::string::npos || name == "." ||
          name == "..") {
        error(ino_str(ino) + ": invalid entry name '" + name + "'");
      }
      names[child]++;
      if ((c->mode & S_IFMT) == S_IFDIR) {
        subdirs[ino]++;
        if (named_by.count(child)) error(ino_str(child) + ": directory has more than one name");
        named_by[child] = ino;
      }
    }
  }

  // Reachability from the root.
  std::set<uint64_t> reached{meta::ROOT_INO};
  std::vector<uint64_t> todo{meta::ROOT_INO};
  while (!todo.empty()) {
    uint64_t d = todo.back();
    todo.pop_back();
    meta::Inode* dir = ns.find(d);
    for (auto& [name, child] : dir->entries) {
      meta::Inode* c = ns.find(child);
      if (c && reached.insert(child).second && (c->mode & S_IFMT) == S_IFDIR) todo.push_back(child);
    }
  }

  // Chunk maps.
  std::map<uint64_t, std::vector<std::pair<uint64_t, bool>>> owners;  // aun -> (ino, writable)
  std::vector<uint64_t> orphans;
  for (auto& [ino, inode] : ns.inodes) {
    uint32_t type = inode.mode & S_IFMT;
    r.inodes++;
    if (type == S_IFDIR) {
      r.directories++;
      if (ino != meta::ROOT_INO) {
        uint32_t want = 2 + subdirs[ino];
        if (inode.nlink != want) {
          if (repair) {
            fixed(ino_str(ino) + ": directory link count " + std::to_string(inode.nlink) + " -> " + std::to_string(want));
            inode.nlink = want;
          } else {
            error(ino_str(ino) + ": directory link count is " + std::to_string(inode.nlink) + ", should be " +
                  std::to_string(want));
          }
        }
        auto by = named_by.find(ino);
        if (by != named_by.end() && inode.parent != by->second) {
          if (repair) {
            fixed(ino_str(ino) + ": parent " + std::to_string(inode.parent) + " -> " + std::to_string(by->second));
            inode.parent = by->second;
          } else {
            error(ino_str(ino) + ": '..' points to " + std::to_string(inode.parent) + " but it is named in " +
                  std::to_string(by->second));
          }
        }
      } else if (inode.nlink != 2 + subdirs[ino]) {
        if (repair) {
          fixed("root directory link count -> " + std::to_string(2 + subdirs[ino]));
          inode.nlink = 2 + subdirs[ino];
        } else {
          error("root directory link count is " + std::to_string(inode.nlink) + ", should be " +
                std::to_string(2 + subdirs[ino]));
        }
      }
      if (!reached.count(ino)) error(ino_str(ino) + ": directory not reachable from the root");
      continue;
    }
    if (type == S_IFLNK) r.symlinks++;
    if (type == S_IFREG) r.files++;
    uint32_t want = names[ino];
    if (want == 0) {
      orphans.push_back(ino);
      continue;
    }
    if (inode.nlink != want) {
      if (repair) {
        fixed(ino_str(ino) + ": link count " + std::to_string(inode.nlink) + " -> " + std::to_string(want));
        inode.nlink = want;
      } else {
        error(ino_str(ino) + ": link count is " + std::to_string(inode.nlink) + ", but " + std::to_string(want) +
              " names point to it");
      }
    }
    if (!reached.count(ino)) error(ino_str(ino) + ": not reachable from the root");
    if (type != S_IFREG) continue;
    if (inode.size > inode.lxt.size() * g.chunk_bytes()) {
      error(ino_str(ino) + ": size " + std::to_string(inode.size) + " is beyond its " + std::to_string(inode.lxt.size()) +
            " chunks");
    }
  }
  for (auto& [ino, inode] : ns.inodes) {
    if ((inode.mode & S_IFMT) != S_IFREG) continue;
    for (size_t i = 0; i < inode.lxt.size(); ++i) {
      uint64_t e = inode.lxt[i];
      uint64_t aun = sisl::lxt_aun(e);
      std::string where = ino_str(ino) + " chunk " + std::to_string(i);
      if (aun >= g.data_chunks()) {
        error(where + ": maps physical chunk " + std::to_string(aun) + " outside the data area (" +
              std::to_string(g.data_chunks()) + " chunks)");
        continue;
      }
      if (!(e & sisl::LXT_PERM_READ)) error(where + ": LXT entry without read permission");
      if (sisl::lxt_ports(e) == 0) error(where + ": LXT entry with no port");
      owners[aun].push_back({ino, (e & sisl::LXT_PERM_WRITE) != 0});
    }
  }
  for (auto& [aun, list] : owners) {
    r.chunks_used++;
    if (list.size() == 1) continue;
    r.chunks_shared++;
    if (list.size() > 256) {
      error("chunk " + std::to_string(aun) + ": " + std::to_string(list.size()) + " owners, beyond the 256 a chunk can have");
    }
    for (auto& [ino, writable] : list) {
      if (writable) {
        error("chunk " + std::to_string(aun) + ": shared by " + std::to_string(list.size()) +
              " map entries, but " + ino_str(ino) + " maps it writable (only a copy-on-write, read-only share may be shared)");
        break;
      }
    }
  }
  for (uint64_t ino : orphans) {
    meta::Inode& inode = ns.inodes.at(ino);
    if (repair) {
      fixed(ino_str(ino) + ": orphan (no name) removed, " + std::to_string(inode.lxt.size()) + " chunks freed");
      if (freed) {
        for (uint64_t e : inode.lxt) freed->push_back(sisl::lxt_aun(e));
      }
      ns.inodes.erase(ino);
    } else {
      r.notes.push_back(ino_str(ino) + ": orphan (unlinked while open); freed at the next mount or by --repair");
    }
  }
  if (!r.errors.empty()) {
    r.exit_code = EXIT_ERRORS_LEFT;
  } else if (!r.repairs.empty()) {
    r.exit_code = EXIT_FIXED;
  }
  return r;
}

Report run(const std::string& device, const Options& options) {
  Report r;
  store::FileStoreOptions fo;
  fo.block_size = 512;
  fo.read_only = !options.repair;
  fo.exclusive_lock = true;
  auto dev = store::open_file_store(device, fo);
  if (!dev) {
    r.errors.push_back(device + ": " + dev.error().message() +
                       (dev.error().value() == EBUSY ? " (it is mounted: unmount it before fsck)" : ""));
    r.exit_code = EXIT_OPERATIONAL;
    return r;
  }
  if (options.progress) std::fprintf(stderr, "fsck: loading metadata of %s\n", device.c_str());
  meta::OpenOptions mo;
  mo.read_only = !options.repair;
  meta::OpenReport report;
  std::string why;
  auto store = meta::MetaStore::open(*dev.value(), mo, &report, &why);
  if (!store) {
    r.errors.push_back(device + ": " + (why.empty() ? store.error().message() : why));
    r.exit_code = EXIT_ERRORS_LEFT;
    return r;
  }
  for (const std::string& p : report.problems) r.errors.push_back(p);
  if (report.fell_back) r.errors.push_back("the newest superblock/checkpoint is unusable; the previous one was used");
  r.notes.push_back("superblock " + std::to_string(report.superblock_used) + ", generation " +
                    std::to_string(report.generation) + ", " + std::to_string(report.records_replayed) +
                    " journal records replayed (" + report.journal_stop_reason + ")");
  meta::MetaStore& m = *store.value();
  if (options.progress) std::fprintf(stderr, "fsck: checking %zu inodes\n", m.ns().inodes.size());
  std::vector<uint64_t> freed;
  Report checked = check_namespace(m.ns(), m.geometry(), options.repair, &freed);
  checked.errors.insert(checked.errors.begin(), r.errors.begin(), r.errors.end());
  checked.notes.insert(checked.notes.begin(), r.notes.begin(), r.notes.end());
  if (options.repair && (!checked.repairs.empty() || report.fell_back || !report.problems.empty())) {
    // Chunks of removed orphans read as zeros before anyone can be given them.
    const meta::Geometry& g = m.geometry();
    for (uint64_t aun : freed) {
      (void)dev.value()->discard(g.data_offset + aun * g.chunk_bytes(), g.chunk_bytes());
    }
    if (auto ec = m.checkpoint()) {
      checked.errors.push_back("writing the repaired metadata failed: " + ec.message());
      checked.exit_code = EXIT_ERRORS_LEFT;
      return checked;
    }
    if (report.fell_back || !report.problems.empty()) {
      checked.repairs.push_back("wrote a fresh checkpoint over the damaged metadata");
      // The damage is now repaired; keep only what is still wrong in the namespace itself.
      checked.errors.erase(checked.errors.begin(), checked.errors.begin() +
                                                       static_cast<std::ptrdiff_t>(r.errors.size()));
    }
    checked.exit_code = checked.errors.empty() ? EXIT_FIXED : EXIT_ERRORS_LEFT;
  } else if (!checked.errors.empty()) {
    checked.exit_code = EXIT_ERRORS_LEFT;
  }
  return checked;
}

}  // namespace vlunfs::fsck
