#pragma once
// loopback(): listen_tcp options for tests, which listen on 127.0.0.1 only (with port 0,
// so the kernel picks a free port) and never on every interface.

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "transports/tcp.hpp"

namespace torsion::test {

/// TcpListenOptions bound to 127.0.0.1 with the given accept backlog; every other field
/// keeps TcpListenOptions' default.
inline TcpListenOptions loopback(int backlog = TcpListenOptions{}.backlog) {
  TcpListenOptions o;
  o.interface = "127.0.0.1";
  o.backlog = backlog;
  return o;
}

/// Binds `fd`, an AF_INET stream socket, to 127.0.0.1 with port 0 and returns the port the
/// kernel picked (the test fails if it cannot).
inline std::uint16_t bind_loopback(int fd) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  return ntohs(addr.sin_port);
}

/// A port on 127.0.0.1 that was free a moment ago (bound with port 0, then closed), for a
/// peer that cannot bind port 0 itself (haproxy) or a test of an explicit local port. Another
/// process may take it meanwhile: callers retry with a new one when binding it fails.
inline std::uint16_t recently_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  const std::uint16_t port = bind_loopback(fd);
  ::close(fd);
  return port;
}

/// A TCP socket listening on 127.0.0.1, made with plain socket(2) calls as other code
/// (a supervisor, systemd) would make it, for tests that adopt, pass or starve one.
struct RawListener {
  int fd = -1;            ///< the caller's to close (or to hand over)
  std::uint16_t port = 0; ///< picked by the kernel
};

/// A RawListener with the given accept backlog (0: one pending connection at most).
inline RawListener raw_listener(int backlog = 16) {
  RawListener l;
  l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(l.fd >= 0);
  l.port = bind_loopback(l.fd);
  REQUIRE(::listen(l.fd, backlog) == 0);
  return l;
}

}  // namespace torsion::test
