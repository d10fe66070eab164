#include "transports/detail/stream_engine.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

// After a TCP read that drained the socket (TCP_INQ says nothing is left), the stream
// engine either tries the next read from the loop (late, behind the handlers ready then)
// or waits for readable, and learns per connection which pays (see "reading" in
// transports/detail/stream_engine.hpp). Every path must deliver every byte and then a FIN
// arriving alone: a peer whose next piece is already there when the late read runs, one
// whose piece comes only after it found the socket empty (long enough to reach the longest
// run of waits), and a switch from one pace to the other. tests/testing/socket_probe_test.cpp
// has a FIN waiting behind the bytes (which TCP_INQ counts as something left).

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// One TCP connection on 127.0.0.1, made when constructed; the client sends pieces and the
// server records them.
struct Pair {
  Reactor reactor;
  RecordingFactory server;
  std::shared_ptr<ListeningPort> port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  std::shared_ptr<Connector> connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  std::string sent;

  Pair() {
    REQUIRE(wait_for(reactor, [&] { return !server.records.empty() && !client.records.empty() &&
                                           client.records[0].made == 1; },
                     "connected"));
  }
  Record& srv() { return server.records[0]; }
  Record& cli() { return client.records[0]; }

  // Sends `piece` and waits until the server has read everything so far: its next read
  // finds the socket drained.
  void send(const std::string& piece) {
    sent += piece;
    cli().transport->write(piece);
    REQUIRE(wait_for(reactor, [&] { return srv().received == sent; }, "the piece"));
  }

  // Closes the client; the server gets the FIN, alone, after its drained reads.
  void finish() {
    cli().transport->lose_connection();
    REQUIRE(wait_for(reactor, [&] { return srv().eofs == 1 && srv().lost == 1; }, "the FIN"));
    CHECK(srv().received == sent);
    CHECK(srv().made == 1);
  }

  // Runs `turns` turns of the loop (call_soon batches): a read posted before is tried
  // within them, and finds the socket empty.
  void idle_turns(int turns) {
    int done = 0;
    std::function<void()> tick = [&] {
      if (++done < turns) reactor.call_soon(tick);
    };
    reactor.call_soon(tick);
    REQUIRE(wait_for(reactor, [&] { return done >= turns; }, "the idle turns"));
  }
};

std::string piece(int i, int longest) {
  return std::string(1 + static_cast<std::size_t>(i % longest), static_cast<char>('a' + i % 26));
}

}  // namespace

TEST_CASE("bytes sent one at a time after each drained read all arrive, then the FIN") {
  Pair pair;
  for (int i = 0; i < 50; ++i) pair.send(piece(i, 7));
  pair.finish();
}

TEST_CASE("late reads and readable waits after drained reads deliver every byte, at any pace") {
  Pair pair;
  // 80 slow pieces (the late read finds nothing: the waits grow to their longest run),
  // 80 prompt ones (written while the late read is still queued), then both mixed.
  for (int i = 0; i < 240; ++i) {
    const bool slow = i < 80 || (i >= 160 && i % 3 == 0);
    if (slow) pair.idle_turns(3);
    pair.send(piece(i, 5));
  }
  pair.idle_turns(3);
  pair.finish();
}
