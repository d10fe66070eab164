#pragma once
// Test helpers (Linux): look at a connected TCP socket's kernel state, so that a test can
// wait for "the bytes and the FIN have arrived" as a condition instead of waiting an
// arbitrary time. Use with wait_for on Transport::native_handle().

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>

namespace torsion::test {

// Bytes received by the kernel and not yet read by the transport (FIONREAD); 0 on error.
inline std::size_t unread_bytes(int fd) {
  int n = 0;
  if (fd < 0 || ::ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return static_cast<std::size_t>(n);
}

// True once the peer's FIN has arrived (TCP state CLOSE_WAIT or later on the passive
// side, CLOSING or TIME_WAIT on a side that had closed too).
inline bool fin_received(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (fd < 0 || ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
  switch (info.tcpi_state) {
    case TCP_CLOSE_WAIT:
    case TCP_LAST_ACK:
    case TCP_CLOSING:
    case TCP_TIME_WAIT:
      return true;
    default:
      return false;
  }
}

}  // namespace torsion::test
