#pragma once
// For tests of an accept loop out of descriptors (run them in a forked child: the limit
// it lowers is the process's). Leaves a dozen free slots above the highest descriptor in
// use, then uses them all up with connections to a listener on 127.0.0.1, so that the
// listener's next accept fails with EMFILE.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace torsion::test {

// Fills `clients` with the connecting descriptors. Returns 0, or the child's exit code for
// what went wrong: 10 the limit could not be lowered, 11 a socket failed other than with
// EMFILE, 12 a connect failed, 13 fewer than 8 connections were made.
inline int flood_descriptors(int port, std::vector<int>& clients) {
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd)
    if (::fcntl(fd, F_GETFD) != -1) highest = fd;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = static_cast<rlim_t>(highest + 1 + 12);
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return 10;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (;;) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      if (errno != EMFILE) return 11;
      break;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS)
      return 12;
    clients.push_back(fd);
  }
  return clients.size() < 8 ? 13 : 0;
}

}  // namespace torsion::test
