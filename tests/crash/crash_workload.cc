// vlunfs-crash-workload: the mixed workload of the kill -9 crash test, on a real mount, and the
// check that follows the crash (tests/e2e/test_crash_kill9_workload.sh drives both).
//
//   vlunfs-crash-workload run DIR LOG SEED     works in DIR until something fails (the daemon was
//                                              killed), recording every step in LOG
//   vlunfs-crash-workload verify DIR LOG       checks DIR against LOG after a remount
//
// LOG lives outside the mount. Each step is written as "B <step>" before it starts and "E" once
// it returned; the steps are model transitions:
//   C path          created (an empty file, durable)       M path       mkdir
//   R src dst       rename (a replaced file loses a name)   U path       unlink
//   L src dst       hard link                               D path       rmdir
//   W path          the file changed (not durable)          X path       closed without fsync
//   S path N H      fsync returned: N bytes with FNV-1a hash H are durable
//   T path N H      truncate of a clean file returned: N bytes with hash H are durable
// verify rebuilds the model after the last step that returned (and after the one in flight, which
// may or may not have happened) and checks that DIR holds exactly one of the two namespaces, and
// that every file clean in it has exactly its durable bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<unsigned char>;

uint64_t fnv1a(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string parent_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

// ---- The model, shared by run and verify ----

struct File {
  bool clean = true;  // durable content known: size + hash
  uint64_t size = 0, hash = fnv1a(nullptr, 0);
};

struct Model {
  std::map<std::string, int> files;  // path -> id
  std::set<std::string> dirs;        // without the root ("")
  std::map<int, File> state;
  int next_id = 0;

  bool has_name(int id) const {
    for (const auto& [p, i] : files) {
      if (i == id) return true;
    }
    return false;
  }
  void drop_if_unnamed(int id) {
    if (!has_name(id)) state.erase(id);
  }
  // Applies one step; false if it makes no sense (a corrupt log).
  bool apply(const std::string& step) {
    std::istringstream in(step);
    std::string kind, a, b;
    in >> kind >> a;
    if (kind == "C") {
      files[a] = next_id;
      state[next_id++] = File{};
    } else if (kind == "M") {
      dirs.insert(a);
    } else if (kind == "D") {
      dirs.erase(a);
    } else if (kind == "U") {
      auto it = files.find(a);
      if (it == files.end()) return false;
      int id = it->second;
      files.erase(it);
      drop_if_unnamed(id);
    } else if (kind == "L") {
      in >> b;
      if (!files.count(a)) return false;
      files[b] = files[a];
    } else if (kind == "R") {
      in >> b;
      if (dirs.count(a)) {
        std::set<std::string> nd;
        for (const auto& d : dirs) nd.insert(d == a ? b : d.rfind(a + "/", 0) == 0 ? b + d.substr(a.size()) : d);
        dirs = nd;
        std::map<std::string, int> nf;
        for (const auto& [p, id] : files) nf[p.rfind(a + "/", 0) == 0 ? b + p.substr(a.size()) : p] = id;
        files = nf;
        return true;
      }
      if (!files.count(a)) return false;
      int id = files[a];
      files.erase(a);
      int replaced = files.count(b) ? files[b] : -1;
      files[b] = id;
      if (replaced >= 0 && replaced != id) drop_if_unnamed(replaced);
    } else if (kind == "W" || kind == "X") {
      if (!files.count(a)) return false;
      if (kind == "W") state[files[a]].clean = false;
    } else if (kind == "S" || kind == "T") {
      File f;
      in >> f.size >> f.hash;
      if (!files.count(a)) return false;
      if (kind == "T" && !state[files[a]].clean) return false;
      state[files[a]] = f;
    } else {
      return false;
    }
    return true;
  }
};

// ---- run ----

class Runner {
 public:
  Runner(std::string dir, const std::string& log, uint64_t seed) : dir_(std::move(dir)), rng_(seed) {
    log_ = std::fopen(log.c_str(), "a");
    if (!log_) {
      std::perror(log.c_str());
      std::exit(2);
    }
    std::setvbuf(log_, nullptr, _IOLBF, 0);  // a line reaches the kernel before the step starts
  }

  int run() {
    if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) return fail("mkdir " + dir_);
    for (uint64_t n = 0;; n++) {
      if (!step()) return 0;  // the daemon is gone (or the mount broke): that is the point
    }
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  std::string full(const std::string& p) const { return dir_ + "/" + p; }
  int fail(const std::string& what) {
    std::fprintf(stderr, "crash-workload: %s: %s\n", what.c_str(), std::strerror(errno));
    return 1;
  }
  void begin(const std::string& s) { std::fprintf(log_, "B %s\n", s.c_str()); }
  void end() { std::fprintf(log_, "E\n"); }

  template <typename Map>
  std::string any_key(const Map& m) {
    auto it = m.begin();
    std::advance(it, static_cast<long>(pick(m.size())));
    return it->first;
  }
  std::string any_dir() {
    uint64_t n = pick(model_.dirs.size() + 1);
    if (n == model_.dirs.size()) return "";
    auto it = model_.dirs.begin();
    std::advance(it, static_cast<long>(n));
    return *it;
  }
  std::string fresh(const std::string& dir, const char* prefix) {
    for (int i = 0; i < 8; i++) {
      std::string p = (dir.empty() ? "" : dir + "/") + prefix + std::to_string(pick(20));
      if (!model_.files.count(p) && !model_.dirs.count(p)) return p;
    }
    return "";
  }
  std::string hash_line(const std::string& kind, const std::string& path, const Bytes& b) {
    return kind + " " + path + " " + std::to_string(b.size()) + " " + std::to_string(fnv1a(b.data(), b.size()));
  }
  // Runs a step: logs it, does it, logs its end and applies it to the model.
  bool done(const std::string& s, bool ok) {
    if (!ok) return false;
    end();
    model_.apply(s);
    return true;
  }

  bool step() {
    const uint64_t max_size = 1 << 20;
    uint64_t dice = pick(100);
    if (dice < 12 || model_.files.empty()) {
      std::string p = fresh(any_dir(), "f");
      if (p.empty()) return true;
      std::string s = "C " + p;
      begin(s);
      int fd = ::open(full(p).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd >= 0) close(fd);
      if (!done(s, fd >= 0)) return false;
      content_[model_.files[p]] = {};
      return true;
    }
    std::string path = any_key(model_.files);
    int id = model_.files[path];
    Bytes& content = content_[id];
    if (dice < 45) {  // write (and sometimes fsync) through one open
      int fd = ::open(full(path).c_str(), O_WRONLY);
      if (fd < 0) return false;
      uint64_t off = pick(std::min<uint64_t>(content.size() + 70000, max_size - 1));
      uint64_t len = 1 + pick(std::min<uint64_t>(200000, max_size - off));
      Bytes data(len);
      for (auto& c : data) c = static_cast<unsigned char>(rng_());
      std::string s = "W " + path;
      begin(s);
      bool ok = pwrite(fd, data.data(), len, static_cast<off_t>(off)) == static_cast<ssize_t>(len);
      if (ok) {
        if (content.size() < off + len) content.resize(off + len);
        std::memcpy(content.data() + off, data.data(), len);
      }
      if (!done(s, ok)) {
        close(fd);
        return false;
      }
      if (pick(2) == 0) {
        std::string sync = hash_line("S", path, content);
        begin(sync);
        ok = fsync(fd) == 0;
        close(fd);
        return done(sync, ok);
      }
      std::string x = "X " + path;
      begin(x);
      return done(x, close(fd) == 0);
    }
    if (dice < 60) {  // fsync alone
      int fd = ::open(full(path).c_str(), O_RDONLY);
      if (fd < 0) return false;
      std::string s = hash_line("S", path, content);
      begin(s);
      bool ok = fsync(fd) == 0;
      close(fd);
      return done(s, ok);
    }
    if (dice < 70) {  // truncate
      uint64_t size = pick(max_size);
      if (pick(3) == 0) size = pick(5) * 65536;
      Bytes next = content;
      next.resize(size);
      std::string s = model_.state[id].clean ? hash_line("T", path, next) : "W " + path;
      begin(s);
      bool ok = ::truncate(full(path).c_str(), static_cast<off_t>(size)) == 0;
      if (ok) content = next;
      return done(s, ok);
    }
    if (dice < 80) {  // rename, sometimes over another file
      std::string dst = pick(3) == 0 ? any_key(model_.files) : fresh(any_dir(), "f");
      if (dst.empty() || dst == path || (model_.files.count(dst) && model_.files[dst] == id)) return true;
      std::string s = "R " + path + " " + dst;
      begin(s);
      int replaced = model_.files.count(dst) ? model_.files[dst] : -1;
      bool ok = ::rename(full(path).c_str(), full(dst).c_str()) == 0;
      if (!done(s, ok)) return false;
      if (replaced >= 0 && !model_.state.count(replaced)) content_.erase(replaced);
      return true;
    }
    if (dice < 84) {  // hard link
      std::string dst = fresh(any_dir(), "f");
      if (dst.empty()) return true;
      std::string s = "L " + path + " " + dst;
      begin(s);
      return done(s, ::link(full(path).c_str(), full(dst).c_str()) == 0);
    }
    if (dice < 92) {  // unlink
      std::string s = "U " + path;
      begin(s);
      if (!done(s, ::unlink(full(path).c_str()) == 0)) return false;
      if (!model_.state.count(id)) content_.erase(id);
      return true;
    }
    if (dice < 96) {  // mkdir
      std::string parent = any_dir();
      if (std::count(parent.begin(), parent.end(), '/') >= 1) return true;
      std::string p = fresh(parent, "d");
      if (p.empty()) return true;
      std::string s = "M " + p;
      begin(s);
      return done(s, ::mkdir(full(p).c_str(), 0755) == 0);
    }
    if (model_.dirs.empty()) return true;
    auto it = model_.dirs.begin();
    std::advance(it, static_cast<long>(pick(model_.dirs.size())));
    std::string dir = *it;
    bool empty = true;
    for (const auto& [p, i] : model_.files) empty = empty && p.rfind(dir + "/", 0) != 0;
    for (const auto& p : model_.dirs) empty = empty && p.rfind(dir + "/", 0) != 0;
    if (empty) {
      std::string s = "D " + dir;
      begin(s);
      return done(s, ::rmdir(full(dir).c_str()) == 0);
    }
    std::string to = fresh(parent_of(dir), "r");
    if (to.empty()) return true;
    std::string s = "R " + dir + " " + to;
    begin(s);
    return done(s, ::rename(full(dir).c_str(), full(to).c_str()) == 0);
  }

  std::string dir_;
  std::FILE* log_ = nullptr;
  std::mt19937_64 rng_;
  Model model_;
  std::map<int, Bytes> content_;  // what each file holds now
};

// ---- verify ----

struct Seen {
  std::set<std::string> files, dirs;
};

bool walk(const std::string& root, const std::string& rel, Seen* seen, std::string* why) {
  std::string here = rel.empty() ? root : root + "/" + rel;
  DIR* d = opendir(here.c_str());
  if (!d) {
    *why = "opendir " + here + ": " + std::strerror(errno);
    return false;
  }
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string p = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    if (lstat((root + "/" + p).c_str(), &st) != 0) {
      *why = "lstat " + p + ": " + std::strerror(errno);
      closedir(d);
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      seen->dirs.insert(p);
      if (!walk(root, p, seen, why)) {
        closedir(d);
        return false;
      }
    } else {
      seen->files.insert(p);
    }
  }
  closedir(d);
  return true;
}

bool same(const Model& m, const Seen& s) {
  if (m.dirs != s.dirs || m.files.size() != s.files.size()) return false;
  for (const auto& [p, id] : m.files) {
    if (!s.files.count(p)) return false;
  }
  return true;
}

std::string names(const Model& m) {
  std::string out;
  for (const auto& [p, id] : m.files) out += " " + p;
  for (const auto& p : m.dirs) out += " " + p + "/";
  return out;
}

int verify(const std::string& dir, const std::string& log) {
  std::ifstream in(log);
  if (!in) {
    std::fprintf(stderr, "crash-workload: cannot read %s\n", log.c_str());
    return 2;
  }
  Model before;
  std::string line, pending;
  uint64_t steps = 0;
  while (std::getline(in, line)) {
    if (line.rfind("B ", 0) == 0) {
      pending = line.substr(2);
    } else if (line == "E") {
      if (pending.empty() || !before.apply(pending)) {
        std::fprintf(stderr, "crash-workload: %s: a step that does not apply: '%s'\n", log.c_str(), pending.c_str());
        return 2;
      }
      pending.clear();
      steps++;
    }
  }
  Model after = before;
  if (!pending.empty()) after.apply(pending);

  Seen seen;
  std::string why;
  if (!walk(dir, "", &seen, &why)) {
    std::fprintf(stderr, "FAIL %s: %s\n", dir.c_str(), why.c_str());
    return 1;
  }
  std::vector<const Model*> states;
  if (same(before, seen)) states.push_back(&before);
  if (same(after, seen)) states.push_back(&after);
  if (states.empty()) {
    std::string found;
    for (const auto& p : seen.files) found += " " + p;
    for (const auto& p : seen.dirs) found += " " + p + "/";
    std::fprintf(stderr, "FAIL %s: the namespace is neither the one before nor the one after '%s'\n  found: %s\n  before:%s\n  after: %s\n",
                 dir.c_str(), pending.c_str(), found.c_str(), names(before).c_str(), names(after).c_str());
    return 1;
  }
  uint64_t checked = 0, readable = 0;
  for (const auto& p : seen.files) {
    int fd = ::open((dir + "/" + p).c_str(), O_RDONLY);
    if (fd < 0) {
      std::fprintf(stderr, "FAIL %s/%s: open: %s\n", dir.c_str(), p.c_str(), std::strerror(errno));
      return 1;
    }
    Bytes got;
    unsigned char buf[1 << 16];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0) {
        std::fprintf(stderr, "FAIL %s/%s: read: %s\n", dir.c_str(), p.c_str(), std::strerror(errno));
        close(fd);
        return 1;
      }
      if (n == 0) break;
      got.insert(got.end(), buf, buf + n);
    }
    close(fd);
    readable++;
    bool must = true;
    std::vector<File> want;
    for (const Model* m : states) {
      const File& f = m->state.at(m->files.at(p));
      must = must && f.clean;
      want.push_back(f);
    }
    if (!must) continue;
    checked++;
    const uint64_t h = fnv1a(got.data(), got.size());
    bool ok = false;
    for (const File& f : want) ok = ok || (f.size == got.size() && f.hash == h);
    if (!ok) {
      std::fprintf(stderr, "FAIL %s/%s: fsynced contents lost (in flight: '%s'): %zu bytes, expected %llu\n", dir.c_str(),
                   p.c_str(), pending.c_str(), got.size(), static_cast<unsigned long long>(want.front().size));
      return 1;
    }
  }
  std::printf("%s: %llu steps returned, in flight: '%s'; %zu files (%llu fsynced and unchanged: exact), %zu directories\n",
              dir.c_str(), static_cast<unsigned long long>(steps), pending.c_str(), seen.files.size(),
              static_cast<unsigned long long>(checked), seen.dirs.size());
  return readable == seen.files.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "run") {
    return Runner(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10)).run();
  }
  if (argc == 4 && std::string(argv[1]) == "verify") return verify(argv[2], argv[3]);
  std::fprintf(stderr, "usage: %s run DIR LOG SEED | verify DIR LOG\n", argv[0]);
  return 2;
}
