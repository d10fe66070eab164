#pragma once
// What the floor servers (epoll_echo, uring_echo, uv_echo) share outside their loops: the
// command line, the descriptor limit raised for 10,000 connections, the loopback
// listening socket and the "listening on" line. Plain POSIX and no torsion code, so that
// a floor measures only its own loop.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace floor_server {

/// The command line every floor takes: [--port N] [--sink], and [--pong] where the floor
/// offers it (epoll_echo).
struct Options {
  int port = 0;
  bool sink = false;
  bool pong = false;
};

/// Parses the command line; prints the usage and exits with 2 on anything else (--pong
/// too, unless `pong_offered`).
inline Options parse_options(int argc, char** argv, bool pong_offered = false) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      options.port = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--sink") == 0) {
      options.sink = true;
    } else if (pong_offered && std::strcmp(argv[i], "--pong") == 0) {
      options.pong = true;
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--sink]%s\n", argv[0],
                   pong_offered ? " [--pong]" : "");
      std::exit(2);
    }
  }
  return options;
}

/// Raises the soft limit on open descriptors to the hard one.
inline void raise_descriptor_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/// Prints "listening on 127.0.0.1:PORT" first, as examples/echo_server does.
inline void print_listening(int port) {
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
}

/// A TCP socket listening on 127.0.0.1:`port` (0: any), opened with `type_flags` added
/// to SOCK_STREAM | SOCK_CLOEXEC (SOCK_NONBLOCK for a readiness loop), its port printed
/// with print_listening. Exits with a message if it cannot.
inline int listen_loopback(int port, int type_flags) {
  const auto fail = [](const char* what) {
    std::perror(what);
    std::exit(1);
  };
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
  if (fd < 0) fail("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("bind");
  if (listen(fd, 4096) != 0) fail("listen");
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  print_listening(ntohs(sa.sin_port));
  return fd;
}

}  // namespace floor_server
