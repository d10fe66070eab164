#include "framework/reconnecting.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>

#include "framework/testing/manual_clock.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

namespace {

// A connector that only counts; the test plays the transport's part.
struct FakeConnector : Connector {
  int connects = 0, disconnects = 0;
  Address get_destination() const override { return Address::ip("192.0.2.1", 80); }
  void connect() override { ++connects; }
  void disconnect() override { ++disconnects; }
};

std::unique_ptr<Protocol> a_protocol(const Address&) { return std::make_unique<Protocol>(); }

const Reason refused{error::connection_refused};

}  // namespace

TEST_CASE("backoff grows by the factor up to the maximum, exactly when there is no jitter") {
  ManualClock clock;
  Backoff b;
  b.initial_delay = 0.5;
  b.factor = 3;
  b.max_delay = 20;
  b.jitter = 0;
  ReconnectingClientFactory factory(clock, a_protocol, b);
  FakeConnector connector;
  const double expected[] = {0.5, 1.5, 4.5, 13.5, 20, 20, 20};
  for (double delay : expected) {
    CAPTURE(delay);
    factory.started_connecting(connector);
    factory.client_connection_failed(connector, refused);
    CHECK(factory.last_delay() == doctest::Approx(delay));
    REQUIRE(factory.pending_retry().active());
    CHECK(factory.pending_retry().time() == doctest::Approx(clock.seconds() + delay));
    const int before = connector.connects;
    clock.advance(delay * 0.999);
    CHECK(connector.connects == before);  // not early
    clock.advance(delay * 0.002);
    CHECK(connector.connects == before + 1);  // on time
  }
  CHECK(factory.retries() == 7);
  CHECK(factory.trying());
}

TEST_CASE("a successful connection resets the backoff; a loss then retries from the start") {
  ManualClock clock;
  Backoff b;
  b.jitter = 0;
  ReconnectingClientFactory factory(clock, a_protocol, b);
  FakeConnector connector;
  for (int i = 0; i < 3; ++i) {
    factory.started_connecting(connector);
    factory.client_connection_failed(connector, refused);
    clock.advance(factory.last_delay());
  }
  CHECK(factory.last_delay() == doctest::Approx(4.0));
  factory.started_connecting(connector);
  CHECK(factory.build_protocol(Address::ip("192.0.2.1", 80)) != nullptr);  // connected
  CHECK(factory.retries() == 0);
  factory.client_connection_lost(connector, Reason(error::connection_lost));
  CHECK(factory.last_delay() == doctest::Approx(1.0));
  clock.advance(1.0);
  CHECK(connector.connects == 4);
}

TEST_CASE("jitter stays within its bounds and never passes the maximum") {
  ManualClock clock;
  Backoff b;
  b.initial_delay = 1;
  b.factor = 2;
  b.max_delay = 10;
  b.jitter = 0.25;
  ReconnectingClientFactory factory(clock, a_protocol, b);
  factory.seed(12345);
  FakeConnector connector;
  double nominal = 1;
  bool varied = false;
  for (int i = 0; i < 30; ++i) {
    factory.client_connection_failed(connector, refused);
    const double d = factory.last_delay();
    CHECK(d >= nominal * 0.75 - 1e-9);
    CHECK(d <= std::min(nominal * 1.25, 10.0) + 1e-9);
    if (std::abs(d - nominal) > 1e-6) varied = true;
    clock.advance(d);
    nominal = std::min(nominal * 2, 10.0);
  }
  CHECK(varied);
  CHECK(connector.connects == 30);
}

TEST_CASE("max_retries gives up; stop_trying cancels and disconnects; resume_trying restarts") {
  ManualClock clock;
  Backoff b;
  b.jitter = 0;
  b.max_retries = 2;
  struct Counting : ReconnectingClientFactory {
    using ReconnectingClientFactory::ReconnectingClientFactory;
    int gave_up_calls = 0;
    void gave_up(Connector&, const Reason& last) override {
      ++gave_up_calls;
      CHECK(last.is(error::connection_refused));
    }
  } factory(clock, a_protocol, b);
  FakeConnector connector;
  factory.client_connection_failed(connector, refused);
  clock.advance(factory.last_delay());
  factory.client_connection_failed(connector, refused);
  clock.advance(factory.last_delay());
  CHECK(connector.connects == 2);
  factory.client_connection_failed(connector, refused);
  CHECK_FALSE(factory.trying());
  CHECK(factory.gave_up_calls == 1);
  CHECK(clock.pending_count() == 0);

  factory.resume_trying();
  factory.client_connection_failed(connector, refused);
  CHECK(factory.pending_retry().active());
  // stop_trying with a retry pending: cancelled.
  factory.stop_trying();
  CHECK_FALSE(factory.pending_retry().active());
  clock.advance(100);
  CHECK(connector.connects == 2);
  // stop_trying during an attempt: the connector is told to stop.
  factory.resume_trying();
  factory.started_connecting(connector);
  factory.stop_trying();
  CHECK(connector.disconnects == 1);
  factory.client_connection_failed(connector, Reason(error::cancelled));
  CHECK(clock.pending_count() == 0);
  factory.stop_trying();  // idempotent
  CHECK(connector.disconnects == 1);
}

TEST_CASE("bad backoff settings are refused, naming the field") {
  ManualClock clock;
  Backoff b;
  b.factor = 0.5;
  CHECK_THROWS_WITH_AS(ReconnectingClientFactory(clock, a_protocol, b),
                       doctest::Contains("factor"), std::invalid_argument);
  b = {};
  b.jitter = 1;
  CHECK_THROWS_WITH_AS(ReconnectingClientFactory(clock, a_protocol, b),
                       doctest::Contains("jitter"), std::invalid_argument);
  b = {};
  b.max_delay = 0.1;
  CHECK_THROWS_WITH_AS(ReconnectingClientFactory(clock, a_protocol, b),
                       doctest::Contains("max_delay"), std::invalid_argument);
  CHECK_THROWS_AS(ReconnectingClientFactory(clock, nullptr), std::invalid_argument);
}

TEST_CASE("destroying the factory cancels its pending retry") {
  ManualClock clock;
  FakeConnector connector;
  {
    ReconnectingClientFactory factory(clock, a_protocol);
    factory.client_connection_failed(connector, refused);
    CHECK(clock.pending_count() == 1);
  }
  CHECK(clock.pending_count() == 0);
  clock.advance(10);
  CHECK(connector.connects == 0);
}

TEST_CASE("reconnecting over real TCP: refused, then served, then lost, then stopped") {
  Reactor reactor;
  using torsion::test::Record;
  using torsion::test::RecordingFactory;
  RecordingFactory server;
  auto probe = listen_tcp(reactor, 0, server, torsion::test::loopback());
  const int port_number = probe->port();
  probe->stop_listening();  // nothing listens there yet: connections are refused

  int made = 0;
  struct Counter : Protocol {
    int& made;
    explicit Counter(int& m) : made(m) {}
    void connection_made() override { ++made; }
  };
  Backoff b;
  b.initial_delay = 0.01;
  b.factor = 2;
  b.jitter = 0.1;
  struct Watching : ReconnectingClientFactory {
    using ReconnectingClientFactory::ReconnectingClientFactory;
    int failures = 0, losses = 0;
    void client_connection_failed(Connector& c, const Reason& r) override {
      ++failures;
      ReconnectingClientFactory::client_connection_failed(c, r);
    }
    void client_connection_lost(Connector& c, const Reason& r) override {
      ++losses;
      ReconnectingClientFactory::client_connection_lost(c, r);
    }
  } factory(reactor, [&](const Address&) { return std::make_unique<Counter>(made); }, b);
  auto connector = connect_tcp(reactor, "127.0.0.1", port_number, factory);
  torsion::test::wait_for(reactor, [&] { return factory.failures >= 3; }, "three refusals");
  CHECK(factory.retries() >= 3);
  CHECK(made == 0);

  auto port = listen_tcp(reactor, port_number, server, torsion::test::loopback());
  torsion::test::wait_for(
      reactor, [&] { return made == 1 && !server.records.empty() && server.records.back().made == 1; },
      "the retry to connect, on both sides");
  CHECK(factory.retries() == 0);  // reset by the success
  // The server drops the connection: the factory connects again.
  server.records.back().transport->lose_connection();
  torsion::test::wait_for(reactor, [&] { return made == 2; }, "the reconnection");
  CHECK(factory.losses == 1);
  factory.stop_trying();
  connector->disconnect();
  torsion::test::wait_for(reactor, [&] { return factory.losses == 2; }, "the final close");
  reactor.run_until([] { return false; }, 0.05);
  CHECK(made == 2);
  CHECK_FALSE(factory.pending_retry().active());
}
