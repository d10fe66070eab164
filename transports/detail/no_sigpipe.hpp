#pragma once
// Private: runs a system call that writes to a pipe or socket without letting a closed
// read end raise SIGPIPE in this process (for calls that have no MSG_NOSIGNAL: write(2)
// on a pipe, sendfile(2)). SIGPIPE is blocked for this thread around the call, and one
// the call raised is consumed before it is unblocked; errno is kept.

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <ctime>

namespace torsion::detail {

// `offered` is how many bytes the call was asked to write: a call that wrote some bytes
// and then found the read end closed returns the short count and raises SIGPIPE too.
template <class Call>
ssize_t without_sigpipe(std::size_t offered, Call&& call) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  // A SIGPIPE can be pending only if it was blocked already (an unblocked one would have
  // been delivered): only then is sigpending needed, and the mask left as it is.
  const bool was_blocked = sigismember(&old, SIGPIPE) == 1;
  bool was_pending = false;
  if (was_blocked) {
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE) == 1;
  }
  const ssize_t n = call();
  const int err = errno;
  const bool short_write = n < 0 ? err == EPIPE : static_cast<std::size_t>(n) < offered;
  if (short_write && !was_pending) {  // consume the SIGPIPE the call may have raised
    const timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  if (!was_blocked) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

}  // namespace torsion::detail
