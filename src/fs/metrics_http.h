// GET /metrics over HTTP/1.x for -o metrics=ADDRESS:PORT: a listening socket served by one thread
// of its own, one connection at a time (a scraper asks every few seconds), each answered and
// closed. Bad requests get 400, other methods 405, other paths 404; a client that sends nothing
// is dropped after two seconds. The destructor stops the thread (the mount's unmount).
#pragma once

#include "vlunfs/error.h"

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace vlunfs::fs {

struct HttpAnswer {
  int status = 200;
  std::string reason;
  std::string content_type;
  std::string body;
  bool head_only = false;  // HEAD: the headers of GET without the body
  std::string render() const;  // status line, headers (Content-Length, Connection: close), body
};

// The answer to one request head (up to and without the blank line); `metrics` renders the body
// of GET /metrics.
HttpAnswer answer_http_request(std::string_view head, const std::function<std::string()>& metrics);

// ADDRESS:PORT ("127.0.0.1:9100", "[::1]:9100", "0.0.0.0:9100") or a bare PORT, which means
// 127.0.0.1 (loopback unless the address says otherwise). Numeric addresses and "localhost" only.
struct ListenAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
};
// EINVAL, saying what is wrong with it, for anything else.
Result<ListenAddress, Error> parse_listen_address(const std::string& text);

class MetricsServer {
 public:
  // Binds and listens at once (so that a port in use is refused at mount), then serves on a thread.
  // Refuses with the errno of the step that failed and a message naming the address.
  static Result<std::unique_ptr<MetricsServer>, Error> start(const std::string& address,
                                                             std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  uint16_t port() const { return port_; }

 private:
  MetricsServer() = default;
  void serve();
  void answer(int client);

  int listen_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: written to stop the thread
  uint16_t port_ = 0;
  std::function<std::string()> render_;
  std::thread thread_;
};

}  // namespace vlunfs::fs
