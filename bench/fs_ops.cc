// fs_ops: timed file-system operations for bench/run.sh, so that the numbers are the system calls'
// and not a shell's process start-ups.
//
//   fs_ops resize FILE BYTES...          ftruncate FILE to each size in turn; prints µs per call
//   fs_ops create-unlink DIR N THREADS   THREADS creators make N empty files between them, then
//                                        remove them; prints creates/s, unlinks/s, pairs/s. With
//                                        several threads each has its own subdirectory: the kernel
//                                        serialises creates in one directory (its i_rwsem), so
//                                        only creators in different directories reach the daemon
//                                        together and can share its journal flushes
//   fs_ops mkfiles DIR N THREADS         makes N empty files (they stay); prints files/s
//   fs_ops smallfiles-write DIR N BYTES THREADS   N files of BYTES in 100 subdirectories, then
//                                        syncfs; prints files/s including the sync
//   fs_ops smallfiles-read DIR N THREADS reads them all back; prints files/s
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs fn(i) for i in [0, n) on `threads` threads, each taking the next index; returns seconds.
template <class Fn>
double run_parallel(long n, int threads, Fn fn) {
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (long i; (i = next.fetch_add(1)) < n && !failed;) {
        if (!fn(i)) failed = true;
      }
    });
  }
  for (auto& th : pool) th.join();
  double s = seconds_since(t0);
  if (failed) std::exit(1);
  return s;
}

int g_threads = 1;

std::string name_of(const std::string& dir, long i) {
  if (g_threads == 1) return dir + "/f" + std::to_string(i);
  return dir + "/t" + std::to_string(i % g_threads) + "/f" + std::to_string(i);
}

bool create_one(const std::string& dir, long i) {
  int fd = open(name_of(dir, i).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "fs_ops: create %s: %s\n", name_of(dir, i).c_str(), std::strerror(errno));
    return false;
  }
  close(fd);
  return true;
}

bool unlink_one(const std::string& dir, long i) {
  if (unlink(name_of(dir, i).c_str()) == 0) return true;
  std::fprintf(stderr, "fs_ops: unlink %s: %s\n", name_of(dir, i).c_str(), std::strerror(errno));
  return false;
}

std::string small_name(const std::string& dir, long i) {
  return dir + "/d" + std::to_string(i % 100) + "/s" + std::to_string(i);
}

bool write_small(const std::string& dir, long i, const std::vector<char>& data) {
  int fd = open(small_name(dir, i).c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    std::fprintf(stderr, "fs_ops: write %s: %s\n", small_name(dir, i).c_str(), std::strerror(errno));
    return false;
  }
  close(fd);
  return true;
}

bool read_small(const std::string& dir, long i) {
  char buf[65536];
  int fd = open(small_name(dir, i).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  while (read(fd, buf, sizeof buf) > 0) {
  }
  close(fd);
  return true;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc >= 4 && std::strcmp(argv[1], "resize") == 0) {
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::perror(argv[2]);
      return 1;
    }
    for (int a = 3; a < argc; ++a) {
      off_t size = std::strtoll(argv[a], nullptr, 10);
      auto t0 = Clock::now();
      if (ftruncate(fd, size) != 0) {
        std::perror("ftruncate");
        return 1;
      }
      std::printf("%.1f\n", seconds_since(t0) * 1e6);
    }
    close(fd);
    return 0;
  }
  if (argc == 5 && (std::strcmp(argv[1], "create-unlink") == 0 || std::strcmp(argv[1], "mkfiles") == 0)) {
    const std::string dir = argv[2];
    const long n = std::atol(argv[3]);
    const int threads = std::atoi(argv[4]);
    g_threads = threads;
    for (int t = 0; threads > 1 && t < threads; ++t) mkdir((dir + "/t" + std::to_string(t)).c_str(), 0755);
    double create_s = run_parallel(n, threads, [&](long i) { return create_one(dir, i); });
    if (std::strcmp(argv[1], "mkfiles") == 0) {
      std::printf("%.0f\n", n / create_s);
      return 0;
    }
    double unlink_s = run_parallel(n, threads, [&](long i) { return unlink_one(dir, i); });
    for (int t = 0; threads > 1 && t < threads; ++t) rmdir((dir + "/t" + std::to_string(t)).c_str());
    std::printf("%.0f %.0f %.0f\n", n / create_s, n / unlink_s, n / (create_s + unlink_s));
    return 0;
  }
  if (argc == 6 && std::strcmp(argv[1], "smallfiles-write") == 0) {
    const std::string dir = argv[2];
    const long n = std::atol(argv[3]);
    std::vector<char> data(std::strtoul(argv[4], nullptr, 10), 'x');
    for (int d = 0; d < 100; ++d) mkdir((dir + "/d" + std::to_string(d)).c_str(), 0755);
    auto t0 = Clock::now();
    run_parallel(n, std::atoi(argv[5]), [&](long i) { return write_small(dir, i, data); });
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    syncfs(dfd);
    close(dfd);
    std::printf("%.0f\n", n / seconds_since(t0));
    return 0;
  }
  if (argc == 5 && std::strcmp(argv[1], "smallfiles-read") == 0) {
    const std::string dir = argv[2];
    const long n = std::atol(argv[3]);
    double s = run_parallel(n, std::atoi(argv[4]), [&](long i) { return read_small(dir, i); });
    std::printf("%.0f\n", n / s);
    return 0;
  }
  std::fprintf(stderr,
               "usage: fs_ops resize FILE BYTES... | create-unlink DIR N THREADS | mkfiles DIR N THREADS |\n"
               "       smallfiles-write DIR N BYTES THREADS | smallfiles-read DIR N THREADS\n");
  return 2;
}
