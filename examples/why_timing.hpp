#pragma once
/// \file
/// The clocks and the busy work of the docs/why-a-reactor.md experiment, shared by
/// examples/bulk_write.cpp, why_blocking.cpp, why_nonblocking.cpp and why_coroutine.cpp so
/// that every step measures time, burns CPU and ends the same way; and the command line of the
/// two torsion clients (bulk_write, why_coroutine). Plain POSIX: why_blocking and
/// why_nonblocking use no torsion on purpose, and this header keeps it so.

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace torsion::examples {

/// Seconds on a monotonic clock (steady_clock); only differences mean anything.
inline double wall_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

/// CPU seconds this process has used, user plus system.
inline double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/// CPU seconds the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The "useful work": keeps the CPU busy until `seconds` of wall-clock time have passed
/// since the call, whatever the CPU's speed (a loop the compiler cannot remove, checking
/// the clock every few thousand turns). On a loaded machine the thread may be pre-empted
/// meanwhile: it then gets less than `seconds` of CPU, but never holds the loop longer.
inline void busy_for(double seconds) {
  const double end = wall_seconds() + seconds;
  volatile long sink = 0;
  while (wall_seconds() < end)
    for (long i = 0; i < 4096; ++i) sink = sink + i;
}

/// Ends a transfer on a plain socket the way the torsion clients end theirs, so that every
/// step times the same thing: sends EOF (shutdown SHUT_WR), waits (blocking) until the
/// reader, having read every byte, closes its side, then closes `fd`.
inline void wait_for_reader(int fd) {
  shutdown(fd, SHUT_WR);
  pollfd p{fd, POLLIN, 0};
  char sink[4096];
  for (;;) {
    if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
    const ssize_t n = recv(fd, sink, sizeof sink, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
  }
  close(fd);
}

/// The command line of the torsion clients (bulk_write, why_coroutine):
/// HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES] [--jobs N] [--slice MS]
/// [--trace FILE]. The defaults are the setup whose arithmetic examples/bulk_write.cpp's
/// header works out.
struct TransferArgs {
  std::string busy = "none";  ///< none, normal or idle
  double mib = 8;             ///< how much to send (the seed's Twisted "foo\n" * 2 * 1024 * 1024)
  int sndbuf = 212992;        ///< SO_SNDBUF to ask for; 0 leaves the kernel's (autotuned)
  int jobs = 20;              ///< busy jobs, each a chain of slices
  double slice_ms = 20;       ///< wall-clock length of one busy slice, in milliseconds
  std::string trace;          ///< file for --trace; "" records nothing
};

/// The usage line of the torsion clients.
inline constexpr const char* transfer_usage =
    "HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES] [--jobs N] [--slice MS] "
    "[--trace FILE]";

/// Parses argv into `args`; on a bad command line prints why to stderr and returns false.
inline bool parse_transfer_args(int argc, char** argv, TransferArgs& args) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s %s\n", argv[0], transfer_usage);
    return false;
  }
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--busy") == 0 && i + 1 < argc) {
      args.busy = argv[++i];
    } else if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      args.mib = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--sndbuf") == 0 && i + 1 < argc) {
      args.sndbuf = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) {
      args.jobs = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--slice") == 0 && i + 1 < argc) {
      args.slice_ms = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--trace") == 0 && i + 1 < argc) {
      args.trace = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return false;
    }
  }
  if (args.busy != "none" && args.busy != "normal" && args.busy != "idle") {
    std::fprintf(stderr, "--busy must be none, normal or idle, got '%s'\n", args.busy.c_str());
    return false;
  }
  if (args.jobs < 1 || args.slice_ms <= 0 || args.mib <= 0 || args.sndbuf < 0) {
    std::fprintf(stderr, "--jobs, --slice and --mib must be positive, --sndbuf not negative\n");
    return false;
  }
  return true;
}

}  // namespace torsion::examples
