#include "transports/detail/stream_engine.hpp"

#include <doctest/doctest.h>

#include <string>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

// A TCP read that leaves nothing in the kernel (TCP_INQ says 0) waits for readable instead
// of reading again (see "reading" in transports/detail/stream_engine.hpp). This pins down
// that bytes, and then a FIN alone, arriving after a drained read wake the connection up;
// tests/testing/socket_probe_test.cpp has a FIN waiting behind the bytes (which TCP_INQ
// counts as something left).

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

TEST_CASE("bytes sent one at a time after each drained read all arrive, then the FIN") {
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
  for (int i = 0; i < 50; ++i) {
    const std::string piece(1 + static_cast<std::size_t>(i % 7), static_cast<char>('a' + i % 26));
    sent += piece;
    cli.transport->write(piece);
    // The server has read everything so far: its next read found the socket drained.
    REQUIRE(wait_for(reactor, [&] { return srv.received == sent; }, "the piece"));
  }
  cli.transport->lose_connection();
  REQUIRE(wait_for(reactor, [&] { return srv.eofs == 1 && srv.lost == 1; }, "the FIN"));
  CHECK(srv.received == sent);
}
