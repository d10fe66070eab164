// The relay (protocols/relay.hpp) over endpoints other than TCP-to-TCP, and its counters.
// tests/examples/port_forward_test.cpp drives the flow control and half-closes through
// examples/port_forward, which is built on it.
#include "protocols/relay.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>

#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::loopback;
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
