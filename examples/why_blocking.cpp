// why_blocking HOST PORT [--mib N] [--sndbuf BYTES]
//
// Step 1 of docs/why-a-reactor.md: send 8 MiB ("foo\n" repeated) with one blocking send()
// loop on a plain socket, then send EOF and wait until the reader has read everything and
// closed (as every step does, so that all time the same thing). The process sleeps inside
// send() while the kernel drains its buffer to a slow reader: almost no CPU, and nothing
// else can run. Prints wall time, CPU time (user + system) and the useful work done
// meanwhile (none).
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "examples/cli.hpp"
#include "examples/why_timing.hpp"

namespace {

using torsion::examples::cpu_seconds;  // user + system
using torsion::examples::wall_seconds;

// A connected blocking TCP socket, or -1 (with a message).
int connect_to(const char* host, const char* port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host, port, &hints, &found); rc != 0) {
    std::fprintf(stderr, "%s: %s\n", host, gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      std::perror("connect");
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  return fd;
}

}  // namespace

int example_main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s HOST PORT [--mib N] [--sndbuf BYTES]\n", argv[0]);
    return 2;
  }
  double mib = 8;  // the defaults are bulk_write's (examples/why_timing.hpp)
  int sndbuf = 212992;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      mib = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--sndbuf") == 0 && i + 1 < argc) {
      sndbuf = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return 2;
    }
  }
  torsion::examples::port_arg(argv[2], 1);  // a clear error for a bad port
  const int fd = connect_to(argv[1], argv[2]);
  if (fd < 0) return 1;
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  std::string payload;
  const auto bytes = static_cast<std::size_t>(mib * 1024 * 1024);
  payload.reserve(bytes);
  while (payload.size() + 4 <= bytes) payload += "foo\n";

  const double wall_start = wall_seconds();
  const double cpu_start = cpu_seconds();
  // [snippet:blocking-send]
  std::size_t sent = 0;
  while (sent < payload.size()) {
    // Blocks until the kernel has taken everything (or a signal interrupts it).
    const ssize_t n = send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("send");
      return 1;
    }
    sent += static_cast<std::size_t>(n);
  }
  // [end]
  torsion::examples::wait_for_reader(fd);
  std::printf("step=blocking bytes=%zu wall=%.2fs cpu=%.2fs work_slices=0\n", sent,
              wall_seconds() - wall_start, cpu_seconds() - cpu_start);
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
