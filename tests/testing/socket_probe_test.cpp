#include "tests/support/loopback.hpp"
#include "tests/support/socket_probe.hpp"

#include <doctest/doctest.h>

#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::fin_received;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::unread_bytes;
using torsion::test::wait_for;

// The TCP test "pause_producing holds data back and resume delivers it in order" waits a
// fixed 50 ms for the bytes and the FIN to reach the paused server; with the probe it
// waits exactly until they have (the conversion proposed for tests/transports/tcp_test.cpp).
TEST_CASE("socket probe: wait until the bytes and FIN reach a paused reader") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [&](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->pause_producing(); };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("one,");
      rr.transport->write("two,");
      rr.transport->lose_write_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  REQUIRE(wait_for(
      reactor, [&] { return server.records.size() == 1; }, "the connection"));
  Record& s = server.records[0];
  const int fd = s.transport->native_handle();
  CHECK_FALSE(fin_received(-1));
  CHECK(unread_bytes(-1) == 0);
  REQUIRE(wait_for(
      reactor, [&] { return unread_bytes(fd) == 8 && fin_received(fd); },
      "the bytes and the FIN to reach the paused server"));
  CHECK(s.received.empty());
  CHECK(s.lost == 0);
  s.transport->resume_producing();
  REQUIRE(wait_for(
      reactor, [&] { return s.done(); }, "the data and EOF"));
  CHECK(s.received == "one,two,");
  CHECK(s.eofs == 1);
  CHECK(s.reason->clean());
  REQUIRE(wait_for(
      reactor, [&] { return client.lost == 1; }, "the client's close"));
  CHECK(reactor.connection_count() == 0);
}
