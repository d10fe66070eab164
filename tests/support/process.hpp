#pragma once
// Test helpers for checks that need a process of their own (resource limits, many
// descriptors): run a function in a forked child and get its exit status; count the
// open descriptors and the bytes malloc holds for the program.

#include <dirent.h>
#include <doctest/doctest.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <exception>
#include <functional>

namespace torsion::test {

// Forks; the child runs `fn` and exits with its return value (an exception exits 99).
// Returns the child's pid (always > 0: a failed fork fails the test, so that a caller's
// kill(pid, ...) can never be kill(-1, ...)). The child starts with SIGTERM and SIGINT at
// their default disposition: doctest's crash handlers, inherited from the test process,
// would otherwise report a signal sent to the child as a crash of the running test case.
inline pid_t fork_child(const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  REQUIRE_MESSAGE(pid >= 0, "fork failed");
  if (pid == 0) {
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    int status = 99;
    try {
      status = fn();
    } catch (...) {
    }
    ::_exit(status);
  }
  return pid;
}

// Non-blocking check: true once the child has exited; `status` gets its exit code (or
// 128 + signal).
inline bool child_exited(pid_t pid, int& status) {
  int raw = 0;
  if (::waitpid(pid, &raw, WNOHANG) != pid) return false;
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  return true;
}

inline std::size_t open_descriptors() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// Bytes the program holds from malloc right now.
inline std::size_t heap_in_use() { return ::mallinfo2().uordblks; }

}  // namespace torsion::test
