// The daemon's control channel for vlunctl: a Unix socket in the abstract namespace named after the
// mountpoint, so that it needs no file and disappears with the daemon. Only root and the user who
// mounted may talk to it (SO_PEERCRED).
#pragma once

#include <string>
#include <thread>

namespace vlunfs::fs {

class Filesystem;

// The socket name for a mountpoint (its canonical path).
std::string control_socket_name(const std::string& canonical_mountpoint);

class ControlSocket {
 public:
  ControlSocket(Filesystem& fs, const std::string& canonical_mountpoint);
  ~ControlSocket();
  bool listening() const { return fd_ >= 0; }

 private:
  void serve();
  std::string handle(const std::string& command);

  Filesystem& fs_;
  int fd_ = -1;
  uid_t owner_;
  std::thread thread_;
};

// Client side: sends one command line, returns the whole answer. False if nobody listens.
bool control_request(const std::string& canonical_mountpoint, const std::string& command, std::string* answer);

}  // namespace vlunfs::fs
