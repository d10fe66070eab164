// Happy Eyeballs (RFC 8305) in connect_tcp: a name with several addresses, IPv6 first,
// attempt_delay between starts, the first to connect wins and the others are closed, a
// per-address time-out beside the overall one. The names resolve through the connector's
// resolver hook to ::1 and 127.0.0.1 (no system resolver); the timers run on a
// ManualClock while the sockets are real. A "black hole" is a listening socket whose
// accept queue is full: the kernel drops further SYNs, so a connect to it stays pending
// (SYN_SENT) as one to an unreachable address does.

#include <doctest/doctest.h>

#include <asio/ip/tcp.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "support/loopback.hpp"
#include "support/recording.hpp"
#include "support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using namespace torsion::test;
using asio::ip::tcp;

namespace {

const auto v6 = asio::ip::make_address("::1");
const auto v4 = asio::ip::make_address("127.0.0.1");

// A listening socket on `address`:`port` that accepts nothing more: backlog 0 and one
// connection already queued, so the kernel drops every later SYN.
class BlackHole {
 public:
  BlackHole(asio::io_context& io, const asio::ip::address& address, std::uint16_t port)
      : acceptor_(io), filler_(io) {
    const tcp::endpoint ep(address, port);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen(0);
    filler_.connect(acceptor_.local_endpoint());  // fills the queue
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  tcp::acceptor acceptor_;
  tcp::socket filler_;
};

// Sockets in SYN_SENT (a connect in flight) towards `address`:`port`, from /proc/net.
int connects_in_flight(const asio::ip::address& address, std::uint16_t port) {
  std::ifstream table(address.is_v6() ? "/proc/net/tcp6" : "/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  int n = 0;
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state == "02" && remote.size() > 5 && remote.substr(remote.size() - 5) == want) ++n;
  }
  return n;
}

// A port free on both ::1 and 127.0.0.1: a black hole on ::1 and a server on 127.0.0.1.
struct SplitTarget {
  std::unique_ptr<BlackHole> hole;
  std::shared_ptr<ListeningPort> server;
  std::uint16_t port = 0;
};

SplitTarget hole_on_v6_server_on_v4(Reactor& reactor, Factory& factory) {
  for (int tries = 0; tries < 50; ++tries) {
    SplitTarget t;
    t.hole = std::make_unique<BlackHole>(reactor.context(), v6, 0);
    t.port = t.hole->port();
    std::error_code ec;
    t.server = listen_tcp(reactor, t.port, factory, loopback(), ec);
    if (!ec) return t;
  }
  FAIL("no port free on both ::1 and 127.0.0.1");
  return {};
}

TcpConnectOptions raced(testing::ManualClock& clock, std::vector<std::string> addresses) {
  TcpConnectOptions co;
  co.clock = &clock;
  co.resolver = [addresses](const std::string& host) {
    CHECK(host == "dual.test");
    return addresses;
  };
  return co;
}

}  // namespace

TEST_CASE("happy eyeballs: IPv6 first; after attempt_delay IPv4 is tried beside it and wins") {
  Reactor reactor;
  testing::ManualClock clock;
  RecordingFactory server;
  auto target = hole_on_v6_server_on_v4(reactor, server);
  RecordingClientFactory client;
  // The resolver lists IPv4 first; the connector still starts with IPv6.
  connect_tcp(reactor, "dual.test", target.port, client, raced(clock, {"127.0.0.1", "::1"}));
  wait_for(reactor, [&] { return connects_in_flight(v6, target.port) == 1; },
           "the IPv6 connect in flight");
  CHECK(client.started == 1);
  CHECK(client.records.empty());  // IPv4 was not tried first: it would have connected
  REQUIRE(clock.next_deadline().has_value());
  CHECK(*clock.next_deadline() == doctest::Approx(0.25));  // the stagger (timeout is 30)

  clock.advance(0.2);
  CHECK(client.records.empty());
  clock.advance(0.05);  // 250 ms: 127.0.0.1 starts beside ::1
  wait_for(reactor, [&] { return !client.records.empty() && client.records[0].made == 1; },
           "the IPv4 connection");
  CHECK(client.records[0].transport->get_peer().host() == "127.0.0.1");
  // The loser was closed when the winner connected, not left to the kernel's retries (on
  // io_uring once its cancelled connect has ended: transports/detail/io_close.hpp).
  CHECK(wait_for(reactor, [&] { return connects_in_flight(v6, target.port) == 0; },
                 "the IPv6 connect closed"));
  CHECK(client.failed == 0);
  // Only the overall time-out was pending, and it is gone with the success.
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("happy eyeballs: a refused address hands over at once, without waiting") {
  Reactor reactor;
  testing::ManualClock clock;
  RecordingFactory server;
  std::shared_ptr<ListeningPort> listening;
  std::uint16_t port = 0;
  for (int tries = 0; tries < 50 && !listening; ++tries) {
    {
      // A port just closed on ::1: connecting there is refused.
      tcp::acceptor probe(reactor.context(), tcp::endpoint(v6, 0));
      port = probe.local_endpoint().port();
    }
    std::error_code ec;
    listening = listen_tcp(reactor, port, server, loopback(), ec);
  }
  REQUIRE(listening);
  RecordingClientFactory client;
  connect_tcp(reactor, "dual.test", port, client, raced(clock, {"::1", "127.0.0.1"}));
  wait_for(reactor, [&] { return !client.records.empty() && client.records[0].made == 1; },
           "the IPv4 connection");
  CHECK(clock.seconds() == 0);  // no attempt_delay was spent
  CHECK(client.records[0].transport->get_peer().host() == "127.0.0.1");
}

TEST_CASE("happy eyeballs: attempt_timeout gives a black-holed address up and tries the next") {
  Reactor reactor;
  testing::ManualClock clock;
  RecordingFactory server;
  auto target = hole_on_v6_server_on_v4(reactor, server);
  RecordingClientFactory client;
  auto co = raced(clock, {"::1", "127.0.0.1"});
  co.attempt_delay = 10;  // longer than the per-address limit: the limit starts IPv4
  co.attempt_timeout = 1;
  connect_tcp(reactor, "dual.test", target.port, client, co);
  wait_for(reactor, [&] { return connects_in_flight(v6, target.port) == 1; },
           "the IPv6 connect in flight");
  clock.advance(0.9);
  CHECK(client.records.empty());
  CHECK(connects_in_flight(v6, target.port) == 1);
  clock.advance(0.1);
  CHECK(wait_for(reactor, [&] { return connects_in_flight(v6, target.port) == 0; },
                 "the IPv6 connect given up, its socket closed"));
  wait_for(reactor, [&] { return !client.records.empty() && client.records[0].made == 1; },
           "the IPv4 connection");
  CHECK(client.records[0].transport->get_peer().host() == "127.0.0.1");
  CHECK(client.failed == 0);
}

TEST_CASE("happy eyeballs: when every address fails, the last failure is reported") {
  Reactor reactor;
  testing::ManualClock clock;
  // Black holes on both families, on one port.
  std::unique_ptr<BlackHole> hole6, hole4;
  for (int tries = 0; tries < 50 && !hole4; ++tries) {
    hole6 = std::make_unique<BlackHole>(reactor.context(), v6, 0);
    try {
      hole4 = std::make_unique<BlackHole>(reactor.context(), v4, hole6->port());
    } catch (const std::system_error&) {
    }
  }
  REQUIRE(hole4);
  const auto port = hole6->port();
  RecordingClientFactory client;
  auto co = raced(clock, {"::1", "127.0.0.1"});
  co.attempt_timeout = 2;
  co.timeout = 0;
  connect_tcp(reactor, "dual.test", port, client, co);
  wait_for(reactor, [&] { return connects_in_flight(v6, port) == 1; }, "the IPv6 connect");
  clock.advance(0.25);
  // Both in flight now (on io_uring the connect is submitted when the loop next runs).
  CHECK(wait_for(reactor, [&] { return connects_in_flight(v4, port) == 1; }, "the IPv4 connect"));
  CHECK(connects_in_flight(v6, port) == 1);
  clock.advance(1.75);  // ::1 reaches its limit first
  CHECK(wait_for(reactor, [&] { return connects_in_flight(v6, port) == 0; },
                 "the IPv6 connect closed"));
  CHECK(client.failed == 0);  // 127.0.0.1 is still trying
  clock.advance(0.25);
  wait_for(reactor, [&] { return client.failed == 1; }, "the failure");
  REQUIRE(client.failure.has_value());
  CHECK(client.failure->is(error::timed_out));
  CHECK(client.failure->message().find("127.0.0.1") != std::string::npos);
  CHECK(wait_for(reactor, [&] { return connects_in_flight(v4, port) == 0; },
                 "the IPv4 connect closed"));
  CHECK(client.records.empty());
}

TEST_CASE("happy eyeballs: the overall time-out ends every connect in flight") {
  Reactor reactor;
  testing::ManualClock clock;
  std::unique_ptr<BlackHole> hole6, hole4;
  for (int tries = 0; tries < 50 && !hole4; ++tries) {
    hole6 = std::make_unique<BlackHole>(reactor.context(), v6, 0);
    try {
      hole4 = std::make_unique<BlackHole>(reactor.context(), v4, hole6->port());
    } catch (const std::system_error&) {
    }
  }
  REQUIRE(hole4);
  const auto port = hole6->port();
  RecordingClientFactory client;
  auto co = raced(clock, {"::1", "127.0.0.1"});
  co.timeout = 1;
  connect_tcp(reactor, "dual.test", port, client, co);
  wait_for(reactor, [&] { return connects_in_flight(v6, port) == 1; }, "the IPv6 connect");
  clock.advance(0.5);
  CHECK(wait_for(reactor, [&] { return connects_in_flight(v4, port) == 1; }, "the IPv4 connect"));
  clock.advance(0.5);
  wait_for(reactor, [&] { return client.failed == 1; }, "the failure");
  CHECK(client.failure->is(error::timed_out));
  CHECK(wait_for(reactor, [&] {
    return connects_in_flight(v6, port) == 0 && connects_in_flight(v4, port) == 0;
  }, "both connects closed"));
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("happy eyeballs: a resolver with no numeric address is a lookup failure") {
  Reactor reactor;
  testing::ManualClock clock;
  RecordingClientFactory client;
  connect_tcp(reactor, "dual.test", 80, client, raced(clock, {"not-an-address"}));
  wait_for(reactor, [&] { return client.failed == 1; }, "the failure");
  CHECK(client.failure->is(error::lookup_failed));
  TcpConnectOptions bad;
  bad.attempt_delay = -1;
  CHECK_THROWS_AS(connect_tcp(reactor, "dual.test", 80, client, bad), std::invalid_argument);
  bad.attempt_delay = 0.25;
  bad.attempt_timeout = -0.5;
  CHECK_THROWS_AS(connect_tcp(reactor, "dual.test", 80, client, bad), std::invalid_argument);
}
