#pragma once
/// \file
/// The clocks and the busy work of the docs/why-a-reactor.md experiment, shared by
/// examples/bulk_write.cpp, why_blocking.cpp, why_nonblocking.cpp and why_coroutine.cpp so
/// that every step measures time and burns CPU the same way; and the command line of the
/// two torsion clients (bulk_write, why_coroutine). Plain POSIX: why_blocking and
/// why_nonblocking use no torsion on purpose, and this header keeps it so.

#include <sys/resource.h>
#include <time.h>

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

/// CPU seconds this process has used in user mode only.
inline double user_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) * 1e-6;
}

/// CPU seconds the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The "useful work": `iterations` turns of a loop the compiler cannot remove.
inline void spin(long iterations) {
  volatile long sink = 0;
  for (long i = 0; i < iterations; ++i) sink = sink + i;
}

/// Iterations of spin() that take about `seconds` of CPU on this machine, measured once
/// on the calling thread (so the figure varies from run to run and machine to machine).
inline long calibrate(double seconds) {
  const long probe = 2'000'000;
  const double start = thread_cpu_seconds();
  spin(probe);
  const double took = thread_cpu_seconds() - start;
  return static_cast<long>(static_cast<double>(probe) * seconds / (took > 0 ? took : 1e-3));
}

/// The command line of the torsion clients:
/// HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES].
struct TransferArgs {
  std::string busy = "none";  ///< none, normal or idle
  double mib = 40;            ///< how much to send
  int sndbuf = 0;             ///< SO_SNDBUF to ask for; 0 leaves the kernel's
};

/// Parses argv into `args`; on a bad command line prints why to stderr and returns false.
inline bool parse_transfer_args(int argc, char** argv, TransferArgs& args) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s HOST PORT [--busy none|normal|idle] [--mib N] [--sndbuf BYTES]\n",
                 argv[0]);
    return false;
  }
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--busy") == 0 && i + 1 < argc) {
      args.busy = argv[++i];
    } else if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      args.mib = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--sndbuf") == 0 && i + 1 < argc) {
      args.sndbuf = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return false;
    }
  }
  if (args.busy != "none" && args.busy != "normal" && args.busy != "idle") {
    std::fprintf(stderr, "--busy must be none, normal or idle, got '%s'\n", args.busy.c_str());
    return false;
  }
  return true;
}

}  // namespace torsion::examples
