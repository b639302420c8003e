// An in-process crash workload for the Filesystem class: a seeded random mix of creates, mkdirs,
// writes, fsyncs, truncates, fallocates, renames, links, unlinks, rmdirs, closes and checkpoints,
// run against a model of what the file system must hold, and the checks that follow a crash.
//
// The model knows, for every file, what it holds now and what it held at its last fsync that
// returned ("synced"), and whether anything changed it since ("clean"). After a crash the checks
// are: the namespace is exactly the one after the last operation that returned, or that one plus
// the operation in flight (every namespace change is atomic and durable before its reply); every
// clean file has exactly its synced bytes and size; every file reads back whole, without errors.
#pragma once

#include "fs/filesystem.h"
#include "vlunfs/fault_injecting_store.h"
#include "vlunfs/fsck.h"
#include "vlunfs/meta/namespace.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace vlunfs::crashtest {

using Bytes = std::vector<std::byte>;

struct FileState {
  std::shared_ptr<const Bytes> content = std::make_shared<Bytes>();  // what reads return now
  std::shared_ptr<const Bytes> synced;  // at the last fsync that returned (null: never synced)
  bool clean = false;                   // synced and unchanged since: must survive any crash
  uint64_t ino = 0;
  fs::FileVlun* handle = nullptr;       // open or not (opened on demand, closed by "close")
};

struct Model {
  std::map<std::string, int> files;     // path -> file id (several paths: hard links)
  std::map<std::string, uint64_t> dirs; // path -> ino ("" is the root)
  std::map<int, FileState> state;       // file id -> state
  int next_id = 0;

  std::vector<std::string> paths_of(int id) const {
    std::vector<std::string> out;
    for (const auto& [p, i] : files) {
      if (i == id) out.push_back(p);
    }
    return out;
  }
};

inline std::string parent_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}
inline std::string name_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
inline std::string join(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

struct WorkloadOptions {
  uint64_t chunk_bytes = 64 << 10;
  uint64_t max_file_chunks = 4;
  int ops = 150;
};

// What happened to one run: the model before and after the operation in flight when the crash hit.
struct RunResult {
  Model before;         // after the last operation that returned before the crash
  Model after;          // as if the operation in flight had returned
  int ops_done = 0;
  std::string last_op;  // the operation in flight, for messages
  bool crashed = false;
};

class Workload {
 public:
  // Works below directory `root` (the root of the file system unless said otherwise), so that
  // several workloads can run at once, each in a directory of its own.
  Workload(fs::Filesystem& fs, uint64_t seed, const WorkloadOptions& options, uint64_t root = meta::ROOT_INO)
      : fs_(fs), rng_(seed), options_(options) {
    model_.dirs[""] = root;
  }

  // Runs up to options.ops operations; stops after the one during which *crashed became true.
  RunResult run(const std::atomic<bool>* crashed) {
    RunResult result;
    for (int i = 0; i < options_.ops; i++) {
      Model before = model_;
      std::string op = step();
      if (crashed && crashed->load()) {
        result.before = std::move(before);
        result.after = model_;
        result.ops_done = i;
        result.last_op = op;
        result.crashed = true;
        return result;
      }
    }
    result.before = model_;
    result.after = model_;
    result.ops_done = options_.ops;
    return result;
  }

  // Closes every open file (as the kernel does at unmount).
  void close_all() {
    for (auto& [id, st] : model_.state) {
      if (st.handle) fs_.release_file(st.handle);
      st.handle = nullptr;
    }
    for (fs::FileVlun* h : orphans_) fs_.release_file(h);
    orphans_.clear();
  }

  const Model& model() const { return model_; }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  template <typename Map>
  const typename Map::key_type* pick_key(const Map& m) {
    if (m.empty()) return nullptr;
    auto it = m.begin();
    std::advance(it, static_cast<long>(pick(m.size())));
    return &it->first;
  }

  // A name not taken in `dir`, or "" when the few tries fail (the caller skips its operation).
  std::string fresh_name(const std::string& dir) {
    for (int tries = 0; tries < 8; tries++) {
      std::string p = join(dir, "f" + std::to_string(pick(16)));
      if (!model_.files.count(p) && !model_.dirs.count(p)) return p;
    }
    return "";
  }

  Bytes random_bytes(size_t n) {
    Bytes b(n);
    uint64_t x = rng_();
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      b[i] = static_cast<std::byte>(x >> 56);
    }
    return b;
  }

  void dirty(int id, Bytes content) {
    FileState& st = model_.state[id];
    st.content = std::make_shared<Bytes>(std::move(content));
    st.clean = false;
  }

  // Drops the file when its last name is gone. It is closed now or a few operations later: until
  // then it is an orphan (unlinked while open), which a crash leaves for the next mount to free.
  void forget_if_unnamed(int id) {
    if (!model_.paths_of(id).empty()) return;
    FileState& st = model_.state[id];
    if (st.handle) {
      if (pick(2) == 0) {
        orphans_.push_back(st.handle);
      } else {
        fs_.release_file(st.handle);
      }
    }
    model_.state.erase(id);
  }

  void remove_path(const std::string& path) {
    auto it = model_.files.find(path);
    if (it == model_.files.end()) return;
    int id = it->second;
    model_.files.erase(it);
    forget_if_unnamed(id);
  }

  std::string step() {
    const uint64_t max_size = options_.max_file_chunks * options_.chunk_bytes;
    uint64_t dice = pick(100);
    const int* file_path_id = nullptr;
    std::string path;
    if (!model_.files.empty()) {
      path = *pick_key(model_.files);
      file_path_id = &model_.files[path];
    }
    if (!orphans_.empty() && dice % 10 == 0) {  // the last close of an unlinked file frees it
      fs::FileVlun* h = orphans_.front();
      orphans_.erase(orphans_.begin());
      fs_.release_file(h);
      return "close orphan";
    }
    if (dice < 12 || model_.files.empty()) {  // create
      std::string dir = *pick_key(model_.dirs);
      std::string p = fresh_name(dir);
      if (p.empty()) return "create (directory full)";
      auto a = fs_.create(model_.dirs[dir], name_of(p), S_IFREG | 0644, {});
      if (!a) return "create " + p + " failed";
      int id = model_.next_id++;
      FileState st;
      st.ino = a.value().st.st_ino;
      if (pick(2) == 0) open(st);
      model_.files[p] = id;
      model_.state[id] = st;
      return "create " + p;
    }
    const int id = *file_path_id;
    FileState& st = model_.state[id];
    if (dice < 40) {  // write
      const Bytes& now = *st.content;
      uint64_t off = pick(std::min<uint64_t>(now.size() + options_.chunk_bytes / 2, max_size - 1) + 1);
      uint64_t len = 1 + pick(std::min<uint64_t>(3 * 4096 + 100, max_size - off));
      if (pick(4) == 0) off = off / 4096 * 4096, len = std::max<uint64_t>(4096, len / 4096 * 4096);
      if (off + len > max_size) len = max_size - off;
      Bytes data = random_bytes(len);
      auto n = fs_.write(open(st), off, data);
      if (!n) return "write " + path + " failed " + n.error().message();
      Bytes next = now;
      if (next.size() < off + len) next.resize(off + len);
      std::memcpy(next.data() + off, data.data(), len);
      dirty(id, std::move(next));
      return "write " + path + " @" + std::to_string(off) + "+" + std::to_string(len);
    }
    if (dice < 55) {  // fsync
      if (fs_.fsync(open(st), pick(2) == 0)) return "fsync " + path + " failed";
      st.synced = st.content;
      st.clean = true;
      return "fsync " + path;
    }
    if (dice < 63) {  // truncate (a size change is durable when it returns)
      uint64_t size = pick(max_size + 1);
      if (pick(3) == 0) size = pick(4) * options_.chunk_bytes;
      struct stat s {};
      s.st_size = static_cast<off_t>(size);
      auto r = fs_.setattr(st.ino, s, fs::AttrChanges{.size = true}, pick(2) ? st.handle : nullptr);
      if (!r) return "truncate " + path + " failed " + r.error().message();
      Bytes next = *st.content;
      next.resize(size);
      apply_resize(id, std::move(next));
      return "truncate " + path + " " + std::to_string(size);
    }
    if (dice < 67) {  // fallocate
      const Bytes& now = *st.content;
      uint64_t off = pick(max_size / 2);
      uint64_t len = 1 + pick(max_size / 2 - 1);
      int modes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE};
      int mode = modes[pick(4)];
      if (fs_.fallocate(open(st), mode, off, len)) return "fallocate " + path + " failed";
      Bytes next = now;
      if (mode == 0 || mode == FALLOC_FL_ZERO_RANGE) {
        if (next.size() < off + len) next.resize(off + len);
      }
      if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
        uint64_t end = std::min<uint64_t>(off + len, next.size());
        if (end > off) std::memset(next.data() + off, 0, end - off);
        dirty(id, std::move(next));
      } else if (next.size() != now.size()) {
        apply_resize(id, std::move(next));
      }
      return "fallocate " + path + " mode " + std::to_string(mode) + " @" + std::to_string(off) + "+" + std::to_string(len);
    }
    if (dice < 75) {  // rename a file, sometimes over another
      std::string dst;
      if (pick(3) == 0 && model_.files.size() > 1) {
        dst = *pick_key(model_.files);
      } else {
        dst = fresh_name(*pick_key(model_.dirs));
        if (dst.empty()) return "rename (directory full)";
      }
      if (dst == path || (model_.files.count(dst) && model_.files[dst] == id)) return "rename (same file)";
      if (fs_.rename(model_.dirs[parent_of(path)], name_of(path), model_.dirs[parent_of(dst)], name_of(dst), 0)) {
        return "rename " + path + " failed";
      }
      model_.files.erase(path);
      auto old = model_.files.find(dst);
      int replaced = old != model_.files.end() ? old->second : -1;
      model_.files[dst] = id;
      if (replaced >= 0 && replaced != id) forget_if_unnamed(replaced);
      return "rename " + path + " -> " + dst;
    }
    if (dice < 78) {  // hard link
      std::string dst = fresh_name(*pick_key(model_.dirs));
      if (dst.empty()) return "link (directory full)";
      if (!fs_.link(st.ino, model_.dirs[parent_of(dst)], name_of(dst))) return "link " + path + " failed";
      model_.files[dst] = id;
      return "link " + path + " -> " + dst;
    }
    if (dice < 85) {  // unlink
      if (fs_.unlink(model_.dirs[parent_of(path)], name_of(path))) return "unlink " + path + " failed";
      remove_path(path);
      return "unlink " + path;
    }
    if (dice < 89) {  // mkdir
      std::string parent = *pick_key(model_.dirs);
      if (std::count(parent.begin(), parent.end(), '/') >= 2) return "mkdir (too deep)";
      std::string p = join(parent, "d" + std::to_string(pick(4)));
      if (model_.dirs.count(p) || model_.files.count(p)) return "mkdir (exists)";
      auto a = fs_.mkdir(model_.dirs[parent], name_of(p), 0755, {});
      if (!a) return "mkdir " + p + " failed";
      model_.dirs[p] = a.value().st.st_ino;
      return "mkdir " + p;
    }
    if (dice < 92) {  // rmdir of an empty directory, or rename of a directory
      std::string d = *pick_key(model_.dirs);
      if (d.empty()) return "rmdir (root)";
      bool empty = true;
      for (const auto& [p, i] : model_.files) empty = empty && p.rfind(d + "/", 0) != 0;
      for (const auto& [p, i] : model_.dirs) empty = empty && p.rfind(d + "/", 0) != 0;
      if (empty && pick(2) == 0) {
        if (fs_.rmdir(model_.dirs[parent_of(d)], name_of(d))) return "rmdir " + d + " failed";
        model_.dirs.erase(d);
        return "rmdir " + d;
      }
      std::string to = join(parent_of(d), "r" + std::to_string(pick(1000)));
      if (model_.dirs.count(to) || model_.files.count(to)) return "rename dir (exists)";
      if (fs_.rename(model_.dirs[parent_of(d)], name_of(d), model_.dirs[parent_of(to)], name_of(to), 0)) {
        return "rename dir " + d + " failed";
      }
      move_prefix(model_.dirs, d, to);
      move_prefix(model_.files, d, to);
      return "rename dir " + d + " -> " + to;
    }
    if (dice < 97) {  // close (a file that is not open is unlinked, truncated, renamed as such)
      if (!st.handle) return "close (not open)";
      fs_.release_file(st.handle);
      st.handle = nullptr;
      return "close " + path;
    }
    fs_.sync_all();  // a checkpoint
    return "checkpoint";
  }

  fs::FileVlun* open(FileState& st) {
    if (!st.handle) {
      auto h = fs_.open_file(st.ino, true);
      if (h) st.handle = h.value();
    }
    return st.handle;
  }

  // A size change that returned is durable; a clean file stays clean with its new bytes.
  void apply_resize(int id, Bytes next) {
    FileState& st = model_.state[id];
    const bool was_clean = st.clean;
    st.content = std::make_shared<Bytes>(std::move(next));
    if (was_clean) {
      st.synced = st.content;
    }
  }

  template <typename Map>
  static void move_prefix(Map& m, const std::string& from, const std::string& to) {
    Map out;
    for (auto& [p, v] : m) {
      if (p == from) {
        out[to] = v;
      } else if (p.rfind(from + "/", 0) == 0) {
        out[to + p.substr(from.size())] = v;
      } else {
        out[p] = v;
      }
    }
    m = std::move(out);
  }

  fs::Filesystem& fs_;
  std::mt19937_64 rng_;
  WorkloadOptions options_;
  Model model_;
  std::vector<fs::FileVlun*> orphans_;  // open, no name left
};

// ---- Checks after a crash ----

struct Seen {
  std::map<std::string, uint64_t> files;  // path -> ino
  std::set<std::string> dirs;
};

inline bool walk(fs::Filesystem& fs, uint64_t ino, const std::string& prefix, Seen* seen, std::string* why) {
  auto entries = fs.readdir(ino);
  if (!entries) {
    *why = "readdir of '" + prefix + "' failed: " + entries.error().message();
    return false;
  }
  for (const auto& e : entries.value()) {
    if (e.name == "." || e.name == "..") continue;
    std::string p = join(prefix, e.name);
    if (S_ISDIR(e.mode)) {
      seen->dirs.insert(p);
      if (!walk(fs, e.ino, p, seen, why)) return false;
    } else {
      seen->files[p] = e.ino;
    }
  }
  return true;
}

inline bool same_names(const Model& m, const Seen& seen) {
  if (m.files.size() != seen.files.size() || m.dirs.size() != seen.dirs.size() + 1) return false;
  for (const auto& [p, id] : m.files) {
    if (!seen.files.count(p)) return false;
  }
  for (const auto& [p, ino] : m.dirs) {
    if (!p.empty() && !seen.dirs.count(p)) return false;
  }
  return true;
}

inline std::string describe(const Model& m) {
  std::ostringstream out;
  for (const auto& [p, id] : m.files) out << " " << p;
  for (const auto& [p, ino] : m.dirs) out << " " << p << "/";
  return out.str();
}

inline std::string describe(const Seen& s) {
  std::ostringstream out;
  for (const auto& [p, ino] : s.files) out << " " << p;
  out << " ";
  for (const auto& p : s.dirs) out << " " << p << "/";
  return out.str();
}

// Checks a remounted, started file system against the run. Empty on success, else what is wrong.
inline std::string verify(fs::Filesystem& fs, const RunResult& run, uint64_t root = meta::ROOT_INO) {
  Seen seen;
  std::string why;
  if (!walk(fs, root, "", &seen, &why)) return why;
  std::vector<const Model*> states;
  if (same_names(run.before, seen)) states.push_back(&run.before);
  if (same_names(run.after, seen)) states.push_back(&run.after);
  if (states.empty()) {
    return "namespace after the crash is neither the one before nor the one after '" + run.last_op +
           "':\n  found:  " + describe(seen) + "\n  before: " + describe(run.before) + "\n  after:  " + describe(run.after);
  }
  // Hard links: the names of one file are one inode.
  for (const Model* m : states) {
    for (const auto& [id, st] : m->state) {
      std::set<uint64_t> inos;
      for (const auto& p : m->paths_of(id)) inos.insert(seen.files[p]);
      if (inos.size() > 1) return "the names of one file are different inodes after '" + run.last_op + "'";
    }
  }
  // Every file reads back whole; clean files hold exactly their synced bytes.
  for (const auto& [path, ino] : seen.files) {
    auto attr = fs.getattr(ino);
    if (!attr) return path + ": getattr failed: " + attr.error().message();
    const uint64_t size = static_cast<uint64_t>(attr.value().st.st_size);
    auto h = fs.open_file(ino);
    if (!h) return path + ": open failed: " + h.error().message();
    Bytes got(size);
    uint64_t done = 0;
    while (done < size) {
      auto n = fs.read(h.value(), done, std::span<std::byte>(got.data() + done, size - done));
      if (!n || n.value() == 0) {
        fs.release_file(h.value());
        return path + ": read at " + std::to_string(done) + " of " + std::to_string(size) + " failed" +
               (n ? std::string(" (short)") : ": " + n.error().message());
      }
      done += n.value();
    }
    fs.release_file(h.value());
    std::vector<const Bytes*> expected;
    bool must_match = true;
    for (const Model* m : states) {
      int id = m->files.at(path);
      const FileState& st = m->state.at(id);
      if (!st.clean) {
        must_match = false;
        break;
      }
      expected.push_back(st.synced.get());
    }
    if (!must_match) continue;
    bool ok = std::any_of(expected.begin(), expected.end(), [&](const Bytes* b) { return *b == got; });
    if (!ok) {
      const Bytes& want = *expected.front();
      size_t first = 0;
      while (first < std::min(want.size(), got.size()) && want[first] == got[first]) first++;
      return path + ": fsynced contents lost after '" + run.last_op + "': size " + std::to_string(got.size()) +
             " (expected " + std::to_string(want.size()) + "), first difference at byte " + std::to_string(first);
    }
  }
  return "";
}

}  // namespace vlunfs::crashtest
