#pragma once
/// \file
/// The clocks and the busy work of the docs/why-a-reactor.md experiment, shared by
/// examples/bulk_write.cpp, why_blocking.cpp, why_nonblocking.cpp and why_coroutine.cpp so
/// that every step measures time and burns CPU the same way. Plain POSIX: why_blocking and
/// why_nonblocking use no torsion on purpose, and this header keeps it so.

#include <sys/resource.h>
#include <time.h>

#include <chrono>

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

}  // namespace torsion::examples
