// vlunfs-hostile-io: out-of-range requests that the shell's tools cannot make, for
// tests/e2e/test_hostile_requests.sh. Prints "ok N" or the errno's name (EFBIG, EINVAL, ...).
//   vlunfs-hostile-io pwrite FILE OFFSET LEN       LEN bytes of 0x5A at OFFSET (pwrite(2))
//   vlunfs-hostile-io pread FILE OFFSET LEN
//   vlunfs-hostile-io fallocate FILE MODE OFFSET LEN
//   vlunfs-hostile-io copy SRC DST OFFSET LEN      copy_file_range with an out-of-range offset
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int report(long long result) {
  if (result < 0) {
    const char* name = strerrorname_np(errno);
    std::printf("%s\n", name ? name : "E?");
    return 1;
  }
  std::printf("ok %lld\n", result);
  return 0;
}

long long number(const char* text) { return std::strtoll(text, nullptr, 0); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s pwrite|pread FILE OFFSET LEN | fallocate FILE MODE OFFSET LEN | copy SRC DST OFFSET LEN\n", argv[0]);
    return 2;
  }
  std::string op = argv[1];
  if (op == "pwrite" || op == "pread") {
    int fd = open(argv[2], op == "pwrite" ? O_WRONLY : O_RDONLY);
    if (fd < 0) return report(-1);
    std::vector<char> buf(static_cast<size_t>(number(argv[4])), 0x5A);
    long long n = op == "pwrite" ? pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(number(argv[3])))
                                 : pread(fd, buf.data(), buf.size(), static_cast<off_t>(number(argv[3])));
    close(fd);
    return report(n);
  }
  if (op == "fallocate" && argc == 6) {
    int fd = open(argv[2], O_WRONLY);
    if (fd < 0) return report(-1);
    int r = fallocate(fd, static_cast<int>(number(argv[3])), static_cast<off_t>(number(argv[4])),
                      static_cast<off_t>(number(argv[5])));
    close(fd);
    return report(r);
  }
  if (op == "copy" && argc == 6) {
    int in = open(argv[2], O_RDONLY), out = open(argv[3], O_WRONLY);
    if (in < 0 || out < 0) return report(-1);
    loff_t off_in = 0, off_out = static_cast<loff_t>(number(argv[4]));
    long long n = copy_file_range(in, &off_in, out, &off_out, static_cast<size_t>(number(argv[5])), 0);
    close(in);
    close(out);
    return report(n);
  }
  std::fprintf(stderr, "unknown request\n");
  return 2;
}
