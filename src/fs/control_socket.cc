#include "fs/control_socket.h"

#include "fs/filesystem.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <sstream>

namespace vlunfs::fs {

namespace {

sockaddr_un address_of(const std::string& name, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract namespace: a leading NUL, then the name (cut to fit).
  size_t n = std::min(name.size(), sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path + 1, name.data(), n);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return addr;
}

bool write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The sharing columns of one `ls` line (after physical_chunks): kind (thick, thin or snapshot),
// chunks mapped, shared, reserved, origin (its path now; "(removed, ino N)"; "-" for none) and
// creation time (UTC; "-" when unknown: made before format version 2).
void append_sharing_columns(std::ostringstream& out, const VlunReport& r) {
  out << '\t' << (r.snapshot ? "snapshot" : r.thin ? "thin" : "thick") << '\t' << r.mapped << '\t' << r.shared << '\t'
      << r.reserved << '\t';
  if (r.origin == 0) {
    out << '-';
  } else if (r.origin_path.empty()) {
    out << "(removed, ino " << r.origin << ')';
  } else {
    out << r.origin_path;
  }
  out << '\t';
  if (r.birth_ns == 0) {
    out << '-';
  } else {
    const time_t seconds = static_cast<time_t>(r.birth_ns / 1000000000);
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    out << text;
  }
}

}  // namespace

std::string control_socket_name(const std::string& canonical_mountpoint) {
  return "vlunfs-control:" + canonical_mountpoint;
}

ControlSocket::ControlSocket(Filesystem& fs, const std::string& canonical_mountpoint) : fs_(fs), owner_(getuid()) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  socklen_t len;
  sockaddr_un addr = address_of(control_socket_name(canonical_mountpoint), &len);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 8) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  thread_ = std::thread([this] { serve(); });
}

ControlSocket::~ControlSocket() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

void ControlSocket::serve() {
  for (;;) {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    ucred cred{};
    socklen_t clen = sizeof cred;
    std::string line;
    if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && (cred.uid == 0 || cred.uid == owner_)) {
      char ch;
      while (line.size() < 4096 && ::recv(c, &ch, 1, 0) == 1 && ch != '\n') line.push_back(ch);
      write_all(c, handle(line));
    } else {
      write_all(c, "error: permission denied\n");
    }
    ::close(c);
  }
}

std::string ControlSocket::handle(const std::string& command) {
  std::ostringstream out;
  if (command == "ls") {
    out << "# path\tino\tsize\tcontext\thandle\tchunks\tlast_lba\tphysical_chunks"
        << "\tkind\tmapped\tshared\treserved\torigin\tcreated\n";
    for (const VlunReport& r : fs_.report()) {
      out << r.path << '\t' << r.ino << '\t' << r.size << "\t0x" << std::hex << r.context_id << std::dec << '\t'
          << r.rsrc_handle << '\t' << r.chunks.size() << '\t';
      if (r.last_lba == ~uint64_t{0}) {
        out << "-1";
      } else {
        out << r.last_lba;
      }
      out << '\t';
      for (size_t i = 0; i < r.chunks.size(); ++i) out << (i ? "," : "") << r.chunks[i];
      if (r.chunks.empty()) out << '-';
      append_sharing_columns(out, r);
      out << '\n';
    }
  } else if (command == "stats") {
    PoolStats p = fs_.pool_stats();
    out << "chunk_bytes " << p.chunk_bytes << "\ntotal_chunks " << p.total_chunks << "\nfree_chunks "
        << p.free_chunks << "\nfiles " << p.files << "\ninodes " << p.inodes << '\n';
    // The pool as df sees it (the reserve counts as used) and what thin vLUNs may still claim.
    const uint64_t available = p.free_chunks - std::min(p.free_chunks, p.reserved_chunks);
    out << "mapped_chunks " << p.mapped_chunks << "\nshared_chunks " << p.shared_chunks << "\nreserved_chunks "
        << p.reserved_chunks << "\navailable_chunks " << available << "\nthin_bytes " << p.thin_bytes
        << "\nthin_unwritten_chunks " << p.thin_unwritten_chunks << "\nthin_overcommit "
        << (p.thin_unwritten_chunks > available ? p.thin_unwritten_chunks - available : 0) << '\n';
  } else if (command.rfind("clone ", 0) == 0 || command.rfind("snapshot ", 0) == 0) {
    // "clone SRC DST" / "snapshot SRC DST", paths from the mount's root, tab separated.
    bool snapshot = command[0] == 's';
    std::string args = command.substr(snapshot ? 9 : 6);
    auto tab = args.find('\t');
    if (tab == std::string::npos) return "error: usage: clone SRC<TAB>DST\n";
    auto ec = fs_.clone_file(args.substr(0, tab), args.substr(tab + 1), snapshot);
    out << (ec ? "error: " + ec.message() : std::string("ok")) << '\n';
  } else if (command.rfind("thin ", 0) == 0 || command.rfind("thick ", 0) == 0) {
    bool thin = command[1] == 'h' && command[2] == 'i';
    auto ec = fs_.set_thin(command.substr(thin ? 5 : 6), thin);
    out << (ec ? "error: " + ec.message() : std::string("ok")) << '\n';
  } else if (command == "sync") {
    auto ec = fs_.sync_all();
    out << (ec ? "error: " + ec.message() : std::string("ok")) << '\n';
  } else {
    out << "error: unknown command '" << command << "'\n";
  }
  return out.str();
}

bool control_request(const std::string& canonical_mountpoint, const std::string& command, std::string* answer) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  socklen_t len;
  sockaddr_un addr = address_of(control_socket_name(canonical_mountpoint), &len);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    ::close(fd);
    return false;
  }
  write_all(fd, command + "\n");
  char buf[65536];
  ssize_t n;
  answer->clear();
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer->append(buf, static_cast<size_t>(n));
  ::close(fd);
  return true;
}

}  // namespace vlunfs::fs
