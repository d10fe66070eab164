#pragma once
// loopback(): listen_tcp options for tests, which listen on 127.0.0.1 only (with port 0,
// so the kernel picks a free port) and never on every interface.

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

}  // namespace torsion::test
