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

/// A port on 127.0.0.1 that was free a moment ago (bound with port 0, then closed), for a
/// peer that cannot bind port 0 itself (haproxy) or a test of an explicit local port. Another
/// process may take it meanwhile: callers retry with a new one when binding it fails.
inline std::uint16_t recently_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  REQUIRE(ok);
  return ntohs(addr.sin_port);
}

}  // namespace torsion::test
