// The relay (protocols/relay.hpp) over endpoints other than TCP-to-TCP, and its counters.
// tests/examples/port_forward_test.cpp drives the flow control and half-closes through
// examples/port_forward, which is built on it.
#include "protocols/relay.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/connect_protocol.hpp"
#include "framework/log.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/pattern_peer.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::PatternPeer;
using torsion::test::PeerResult;
using torsion::test::pattern_stream;
using torsion::test::settle;
using torsion::test::wait_for;

namespace {

struct Upper : Protocol {
  void data_received(std::string_view data) override {
    std::string up(data);
    for (char& c : up) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    transport().write(up);
  }
};

struct Client : ClientFactory {
  std::string heard;
  bool lost = false;
  struct P : Protocol {
    Client& c;
    explicit P(Client& client) : c(client) {}
    void connection_made() override { transport().write("relayed"); }
    void data_received(std::string_view data) override { c.heard.append(data); }
    void connection_lost(const Reason&) override { c.lost = true; }
  };
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<P>(*this);
  }
};

}  // namespace

TEST_CASE("relay: TCP in, a Unix socket out, bytes both ways") {
  Reactor reactor;
  auto upper = make_factory<Upper>();
  const std::string path = "@torsion-relay-" + std::to_string(::getpid());
  listen_unix(reactor, path, upper);
  RelayFactory relay(protocol_connector(reactor, "unix:" + path));
  auto port = listen_tcp(reactor, 0, relay, loopback());
  Client client;
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(
      reactor, [&] { return client.heard == "RELAYED"; }, "the answer through the relay");
  CHECK(relay.stats().pairs_open == 1);
  CHECK(relay.stats().pairs_total == 1);
  connector->disconnect();
  wait_for(
      reactor, [&] { return relay.stats().pairs_open == 0; }, "the pair to go");
  CHECK(relay.stats().failed == 0);
}

TEST_CASE("relay: an unreachable destination closes the client and counts a failure") {
  Reactor reactor;
  auto upper = make_factory<Upper>();
  auto gone = listen_tcp(reactor, 0, upper, loopback());
  const int closed = gone->port();
  gone->stop_listening();
  RelayFactory relay(protocol_connector(reactor, "tcp:127.0.0.1:" + std::to_string(closed)));
  auto port = listen_tcp(reactor, 0, relay, loopback());
  Client client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(
      reactor, [&] { return client.lost; }, "the client's connection to close");
  CHECK(client.heard.empty());
  CHECK(relay.stats().failed == 1);
  wait_for(
      reactor, [&] { return relay.stats().pairs_open == 0; }, "the pair to go");
}

TEST_CASE("relay: an empty connect function is refused") {
  CHECK_THROWS_AS(RelayFactory{RelayConnect{}}, std::invalid_argument);
  CHECK_THROWS_AS((void)relay_protocol(RelayConnect{}), std::invalid_argument);
}

TEST_CASE("relay: both directions at once, a slow reader on one side: nothing lost, memory bounded") {
  // 8 MiB each way at the same time. The slow end's reads pause the relay's reading from
  // the other end (which then stops sending), while the other direction runs at full speed;
  // each end half-closes after sending, and the relay passes each EOF on.
  const std::uint64_t total = 8ull * 1024 * 1024;
  double client_nap = 0, origin_nap = 0;
  SUBCASE("the client reads slowly") { client_nap = 0.0005; }
  SUBCASE("the origin reads slowly") { origin_nap = 0.0005; }
  Reactor reactor;
  PeerResult at_origin, at_client;
  FunctionFactory<> origin([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<PatternPeer>(reactor, total, origin_nap, at_origin);
  });
  auto origin_port = listen_tcp(reactor, 0, origin, loopback());
  RelayFactory relay(
      protocol_connector(reactor, "tcp:127.0.0.1:" + std::to_string(origin_port->port())));
  auto port = listen_tcp(reactor, 0, relay, loopback());
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<PatternPeer>(reactor, total, client_nap, at_client);
  });
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(
      reactor, [&] { return at_client.reason && at_origin.reason; }, "both ends to close", 120);
  CHECK(at_client.received == total);
  CHECK(at_origin.received == total);
  CHECK_FALSE(at_client.corrupt);
  CHECK_FALSE(at_origin.corrupt);
  CHECK(at_client.eof);  // the origin's half-close, passed on
  CHECK(at_origin.eof);  // and the client's
  CHECK(at_client.reason->clean());
  CHECK(at_origin.reason->clean());
  const std::size_t peak = relay.stats().peak_buffered;
  INFO("peak buffered " << peak);
  // The high mark (64 KiB) plus at most one read (128 KiB) from the paused side.
  CHECK(peak <= 64 * 1024 + 128 * 1024);
  wait_for(
      reactor, [&] { return relay.stats().pairs_open == 0 && reactor.connection_count() == 0; },
      "the pair to go");
  CHECK(relay.stats().failed == 0);
}

TEST_CASE("relay: what the client sends while the outgoing connection is made is held, bounded, then delivered") {
  // The outgoing connection is made only when the test says so. Meanwhile the client sends
  // 32 MiB and half-closes: the relay holds about a high mark and stops reading, so the
  // rest stays in the client's own write buffer (the kernel takes a few MiB at most). Once
  // connected, every byte arrives at the origin in order, then the EOF, and its answer
  // comes back.
  const std::size_t total = 32 * 1024 * 1024;
  Reactor reactor;
  struct Counter : Protocol {
    std::uint64_t received = 0;
    bool corrupt = false;
    void data_received(std::string_view d) override {
      if (!pattern_stream().matches(received, d)) corrupt = true;
      received += d.size();
    }
    bool eof_received() override {
      transport().write("got " + std::to_string(received) + (corrupt ? " corrupt" : " ok"));
      return false;  // the answer, then close
    }
  };
  auto origin = make_factory<Counter>();
  auto origin_port = listen_tcp(reactor, 0, origin, loopback());
  std::unique_ptr<Protocol> held;
  Deferred<Protocol*> pending;
  RelayFactory relay([&](std::unique_ptr<Protocol> p) {
    held = std::move(p);
    return pending;
  });
  auto port = listen_tcp(reactor, 0, relay, loopback());
  PeerResult at_client;
  std::string answer;
  Transport* client_transport = nullptr;
  struct Uploader : Protocol {
    std::size_t total;
    std::string& answer;
    Transport*& t;
    PeerResult& out;
    Uploader(std::size_t n, std::string& a, Transport*& tr, PeerResult& o)
        : total(n), answer(a), t(tr), out(o) {}
    void connection_made() override {
      t = &transport();
      transport().write(pattern_stream().bytes(total));
      transport().lose_write_connection();
    }
    void data_received(std::string_view d) override { answer.append(d); }
    bool eof_received() override {
      out.eof = true;
      return true;
    }
    void connection_lost(const Reason& r) override {
      t = nullptr;
      out.reason = r;
    }
  };
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Uploader>(total, answer, client_transport, at_client);
  });
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return held != nullptr && client_transport != nullptr; }, "the relay to start connecting");
  for (int i = 0; i < 4; ++i) settle(reactor);
  REQUIRE(client_transport != nullptr);
  const std::size_t left = client_transport->buffer_size();
  INFO("left in the client's buffer: " << left);
  CHECK(left > total / 2);  // the relay stopped reading
  CHECK(relay.stats().pairs_open == 1);

  auto made = connect_protocol_with(
      reactor,
      [&](ClientFactory& f) { return connect_tcp(reactor, "127.0.0.1", origin_port->port(), f); },
      std::move(held));
  auto forwarded = made.add_both([&](Outcome<Protocol*> o) { pending.resolve(std::move(o)); });
  wait_for(reactor, [&] { return at_client.reason.has_value(); }, "the answer and the close", 120);
  CHECK(answer == "got " + std::to_string(total) + " ok");
  CHECK(at_client.eof);
  CHECK(at_client.reason->clean());
  wait_for(
      reactor, [&] { return relay.stats().pairs_open == 0 && reactor.connection_count() == 0; },
      "the pair to go");
  CHECK(relay.stats().failed == 0);
}

TEST_CASE("relay: a destination that closes at once closes the client, with what it sent") {
  Reactor reactor;
  struct Bye : Protocol {
    void connection_made() override {
      transport().write("bye");
      transport().lose_connection();
    }
  };
  auto bye = make_factory<Bye>();
  auto origin_port = listen_tcp(reactor, 0, bye, loopback());
  RelayFactory relay(
      protocol_connector(reactor, "tcp:127.0.0.1:" + std::to_string(origin_port->port())));
  auto port = listen_tcp(reactor, 0, relay, loopback());
  Client client;
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost; }, "the client's connection to close");
  CHECK(client.heard == "bye");
  wait_for(
      reactor, [&] { return relay.stats().pairs_open == 0 && reactor.connection_count() == 0; },
      "the pair to go");
  CHECK(relay.stats().failed == 0);
}

TEST_CASE("relay: a connect function that throws closes the client and counts a failure") {
  Reactor reactor;
  RelayFactory relay([](std::unique_ptr<Protocol>) -> Deferred<Protocol*> {
    throw std::runtime_error("no route today");
  });
  auto port = listen_tcp(reactor, 0, relay, loopback());
  Client client;
  set_log_sink([](LogLevel, std::string_view) {});
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost; }, "the client's connection to close");
  set_log_sink(nullptr);
  CHECK(client.heard.empty());
  CHECK(relay.stats().failed == 1);
  wait_for(
      reactor, [&] { return relay.stats().pairs_open == 0 && reactor.connection_count() == 0; },
      "the pair to go");
}
