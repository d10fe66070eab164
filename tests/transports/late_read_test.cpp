// After a TCP read that drained the socket, the stream engine either tries the next read
// from the loop (late, behind the handlers ready then) or waits for readable, and learns
// per connection which pays (see "reading" in transports/detail/stream_engine.hpp). Every
// path must deliver every byte and the FIN: a peer whose next piece is already there when
// the late read runs, one whose piece comes only after it found the socket empty (long
// enough to reach the longest run of waits), and a switch from one pace to the other.

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// Runs `turns` turns of the loop (call_soon batches): a read posted before is tried
// within them, and finds the socket empty.
void idle_turns(Reactor& reactor, int turns) {
  int done = 0;
  std::function<void()> tick = [&] {
    if (++done < turns) reactor.call_soon(tick);
  };
  reactor.call_soon(tick);
  REQUIRE(wait_for(reactor, [&] { return done >= turns; }, "the idle turns"));
}

}  // namespace

TEST_CASE("late reads and readable waits after drained reads deliver every byte, at any pace") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  REQUIRE(wait_for(reactor, [&] { return !server.records.empty() && !client.records.empty() &&
                                         client.records[0].made == 1; },
                   "connected"));
  Record& srv = server.records[0];
  Record& cli = client.records[0];
  std::string sent;
  // 80 slow pieces (the late read finds nothing: the waits grow to their longest run),
  // 80 prompt ones (written while the late read is still queued), then both mixed.
  for (int i = 0; i < 240; ++i) {
    const bool slow = i < 80 || (i >= 160 && i % 3 == 0);
    if (slow) idle_turns(reactor, 3);
    const std::string piece(1 + static_cast<std::size_t>(i % 5), static_cast<char>('a' + i % 26));
    sent += piece;
    cli.transport->write(piece);
    REQUIRE(wait_for(reactor, [&] { return srv.received == sent; }, "the piece"));
  }
  idle_turns(reactor, 3);
  cli.transport->lose_connection();
  REQUIRE(wait_for(reactor, [&] { return srv.eofs == 1 && srv.lost == 1; }, "the FIN"));
  CHECK(srv.received == sent);
  CHECK(srv.made == 1);
}
