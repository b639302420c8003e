#include "fs/metrics_http.h"

#include "fs/log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vlunfs::fs {

namespace {

constexpr size_t kMaxRequestHead = 8192;
constexpr int kClientTimeoutMs = 2000;

HttpAnswer plain(int status, const char* reason, std::string body) {
  HttpAnswer a;
  a.status = status;
  a.reason = reason;
  a.content_type = "text/plain; charset=utf-8";
  a.body = std::move(body);
  return a;
}

}  // namespace

std::string HttpAnswer::render() const {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  out += "Content-Type: " + content_type + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

HttpAnswer answer_http_request(std::string_view head, const std::function<std::string()>& metrics) {
  const std::string_view line = head.substr(0, head.find("\r\n"));
  // METHOD SP TARGET SP HTTP/1.x (RFC 9112 §3)
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return plain(400, "Bad Request", "malformed request line\n");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 7) != "HTTP/1." || version.size() != 8) return plain(400, "Bad Request", "not HTTP/1.x\n");
  if (target.empty() || target[0] != '/') return plain(400, "Bad Request", "the target must be a path\n");
  if (method != "GET" && method != "HEAD") return plain(405, "Method Not Allowed", "only GET and HEAD\n");
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") return plain(404, "Not Found", "the counters are at /metrics\n");
  HttpAnswer a = plain(200, "OK", metrics());
  a.content_type = "text/plain; version=0.0.4; charset=utf-8";
  a.head_only = method == "HEAD";
  return a;
}

Result<ListenAddress, Error> parse_listen_address(const std::string& text) {
  std::string host = "127.0.0.1", port = text;
  if (const size_t colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535) {
    return make_error(EINVAL, "'" + text + "' is not ADDRESS:PORT (e.g. 127.0.0.1:9100) nor a port");
  }
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return make_error(EINVAL, "'" + host + "' is not a numeric IPv4 or IPv6 address (or localhost)");
  }
  ListenAddress a;
  std::memcpy(&a.address, found->ai_addr, found->ai_addrlen);
  a.length = found->ai_addrlen;
  freeaddrinfo(found);
  return a;
}

Result<std::unique_ptr<MetricsServer>, Error> MetricsServer::start(const std::string& address,
                                                                   std::function<std::string()> render) {
  auto where = parse_listen_address(address);
  if (!where) return where.error();
  std::unique_ptr<MetricsServer> s(new MetricsServer);
  s->render_ = std::move(render);
  s->listen_fd_ = ::socket(where.value().address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) {
    const int e = errno;
    return make_error(e, std::string("metrics socket: ") + std::strerror(e));
  }
  const int on = 1;
  (void)setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (::bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&where.value().address), where.value().length) != 0 ||
      ::listen(s->listen_fd_, 16) != 0) {
    const int e = errno;
    return make_error(e, "cannot listen for metrics on " + address + ": " + std::strerror(e) +
                             (e == EADDRINUSE ? " (choose another port)" : ""));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  if (getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length) == 0) {
    s->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  s->wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (s->wake_fd_ < 0) {
    const int e = errno;
    return make_error(e, std::string("eventfd: ") + std::strerror(e));
  }
  s->thread_ = std::thread([raw = s.get()] { raw->serve(); });
  return s;
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void MetricsServer::serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log_error("metrics: poll failed (%s); GET /metrics is no longer served", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;  // the peer went away already, or out of descriptors for a moment
    answer(client);
    ::close(client);
  }
}

void MetricsServer::answer(int client) {
  std::string head;
  char buf[2048];
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > kMaxRequestHead) {
      const std::string out = answer_http_request("", {}).render();  // 400
      (void)!::send(client, out.data(), out.size(), MSG_NOSIGNAL);
      return;
    }
    pollfd fds[2] = {{client, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int ready = ::poll(fds, 2, kClientTimeoutMs);
    if (ready <= 0 || fds[1].revents) return;  // silent client, or unmounting
    const ssize_t n = ::recv(client, buf, sizeof buf, 0);
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  head.resize(head.find("\r\n\r\n"));
  const std::string out = answer_http_request(head, render_).render();
  size_t sent = 0;
  while (sent < out.size()) {
    pollfd fds[1] = {{client, POLLOUT, 0}};
    if (::poll(fds, 1, kClientTimeoutMs) <= 0) return;
    const ssize_t n = ::send(client, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace vlunfs::fs
