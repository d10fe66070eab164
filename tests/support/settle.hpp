#pragma once
// settle(reactor): a deterministic way to check that something did NOT happen. Instead of
// running the loop for an arbitrary time, it sends a sentinel through the reactor's own
// I/O and waits for it: if the unwanted event was possible, it would have come first.
//
// Each round starts a read on a private pipe while the pipe is empty, then writes one byte,
// so the read can only complete through a fresh epoll wait that happens after the call.
// That wait also reports every descriptor that was ready before, and Asio queues the
// completions it finds behind what was already queued (FIFO). Two rounds: when the second
// sentinel arrives, every handler of the first round's batch has run too, and so has
// everything those handlers queued at once (call_soon, posted handlers). What settle does
// not cover: timers, and events that depend on something outside the process happening
// later (a child's exit, a remote peer) — wait for those on their own condition.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <asio/buffer.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <memory>
#include <system_error>

#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"

namespace torsion::test {

inline void settle(Reactor& reactor) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
  asio::posix::stream_descriptor in(reactor.context(), fds[0]);  // owns fds[0]
  for (int round = 0; round < 2; ++round) {
    // Shared with the handler: it may outlive this call if the wait fails.
    auto arrived = std::make_shared<bool>(false);
    auto byte = std::make_shared<char>(0);
    in.async_read_some(asio::buffer(byte.get(), 1),
                       [arrived, byte](const std::error_code&, std::size_t) { *arrived = true; });
    REQUIRE(::write(fds[1], "s", 1) == 1);
    wait_for(reactor, [&] { return *arrived; }, "the settle sentinel");
  }
  ::close(fds[1]);
}

}  // namespace torsion::test
