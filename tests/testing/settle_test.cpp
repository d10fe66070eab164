// tests/support/settle.hpp replaces fixed waits in tests that check that something did
// NOT happen. Those checks are only as good as settle's premise: whatever was ready, or
// queued, before settle() is handled by the time it returns. These controls check that
// premise positively, many times over, for each kind of event the converted tests rely on.
#include "tests/support/loopback.hpp"
#include "tests/support/settle.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "framework/datagram.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/fd_watch.hpp"
#include "transports/tcp.hpp"
#include "transports/udp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::settle;
using torsion::test::wait_for;

namespace {
constexpr int kRounds = 200;
}  // namespace

TEST_CASE("settle: a callback queued before it has run") {
  Reactor reactor;
  for (int i = 0; i < kRounds; ++i) {
    bool ran = false;
    reactor.call_soon([&] { ran = true; });
    settle(reactor);
    REQUIRE(ran);
  }
}

TEST_CASE("settle: a descriptor readable before it has been handled") {
  Reactor reactor;
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
  int calls = 0;
  add_reader(reactor, fds[0], [&] {
    char c;
    (void)::read(fds[0], &c, 1);
    ++calls;
  });
  for (int i = 1; i <= kRounds; ++i) {
    REQUIRE(::write(fds[1], "x", 1) == 1);
    settle(reactor);
    REQUIRE(calls == i);
  }
  remove_reader(reactor, fds[0]);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("settle: a datagram sent before it has been delivered") {
  struct Count : DatagramProtocol {
    int received = 0;
    void datagram_received(std::string_view, const Address&) override { ++received; }
  };
  Reactor reactor;
  UdpListenOptions o;
  o.interface = "127.0.0.1";
  Count server, client;
  auto port = listen_udp(reactor, 0, server, o);
  auto cport = listen_udp(reactor, 0, client, o);
  wait_for(reactor, [&] { return port->listening() && cport->listening(); }, "listening");
  settle(reactor);
  for (int i = 1; i <= kRounds; ++i) {
    cport->write("d", port->get_host());
    settle(reactor);
    REQUIRE(server.received == i);
  }
  port->stop_listening();
  cport->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}

TEST_CASE("settle: bytes written on a TCP connection before it have been received") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.records.size() == 1 && server.records.size() == 1; },
           "the connection");
  for (std::size_t i = 1; i <= kRounds; ++i) {
    client.records[0].transport->write("b");
    settle(reactor);
    REQUIRE(server.records[0].received.size() == i);
  }
  client.records[0].transport->lose_connection();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}
