// why_nonblocking HOST PORT [--mib N] [--sndbuf BYTES] [--work none|slices]
//
// Step 2 of docs/why-a-reactor.md: the same 8 MiB, on a non-blocking socket, with the loop
// every event-driven program ends up writing by hand: send what the kernel takes; on
// EAGAIN, do a 1 ms slice of useful work (busy_for: 1 ms of wall-clock time on any CPU),
// ask poll() (without waiting) whether the socket is writable again, and repeat. With
// --work none it just sleeps in poll(). Like every step it then sends EOF and waits until
// the reader has read everything and closed. Prints wall time, CPU time (user + system)
// and how many work slices ran meanwhile.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
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

using torsion::examples::busy_for;     // the "useful work"
using torsion::examples::cpu_seconds;  // user + system
using torsion::examples::wall_seconds;

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
    std::fprintf(stderr, "usage: %s HOST PORT [--mib N] [--sndbuf BYTES] [--work none|slices]\n",
                 argv[0]);
    return 2;
  }
  double mib = 8;  // the defaults are bulk_write's (examples/why_timing.hpp)
  int sndbuf = 212992;
  bool work = true;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      mib = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--sndbuf") == 0 && i + 1 < argc) {
      sndbuf = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--work") == 0 && i + 1 < argc) {
      const std::string w = argv[++i];
      if (w != "none" && w != "slices") {
        std::fprintf(stderr, "--work must be none or slices, got '%s'\n", w.c_str());
        return 2;
      }
      work = w == "slices";
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return 2;
    }
  }
  torsion::examples::port_arg(argv[2], 1);  // a clear error for a bad port
  const int fd = connect_to(argv[1], argv[2]);
  if (fd < 0) return 1;
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  std::string payload;
  const auto bytes = static_cast<std::size_t>(mib * 1024 * 1024);
  payload.reserve(bytes);
  while (payload.size() + 4 <= bytes) payload += "foo\n";

  const double wall_start = wall_seconds();
  const double cpu_start = cpu_seconds();
  // [snippet:eagain-loop]
  std::size_t sent = 0;
  long slices = 0;
  while (sent < payload.size()) {
    const ssize_t n = send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      std::perror("send");
      return 1;
    }
    // The kernel's buffer is full. Fill the wait with work, one short slice at a time,
    // checking between slices whether the socket can take more (a zero timeout: no sleep).
    pollfd p{fd, POLLOUT, 0};
    if (work) {
      while (poll(&p, 1, 0) == 0) {
        busy_for(0.001);
        ++slices;
      }
    } else {
      poll(&p, 1, -1);  // nothing else to do: sleep until writable
    }
  }
  // [end]
  torsion::examples::wait_for_reader(fd);
  std::printf("step=nonblocking bytes=%zu wall=%.2fs cpu=%.2fs work_slices=%ld\n", sent,
              wall_seconds() - wall_start, cpu_seconds() - cpu_start, slices);
  return 0;
}

int main(int argc, char** argv) {
  return torsion::examples::run_main(argc, argv, example_main);
}
