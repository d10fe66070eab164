// The relay's zero-copy path stays off where a side is TLS (protocols/relay.hpp): the
// bytes must pass through the TLS layer, so the pair takes the buffered path, in either
// position. relay_splice_test.cpp covers the sockets-only path.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "framework/connect_protocol.hpp"
#include "protocols/relay.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::client_options;
using torsion::test::loopback;
using torsion::test::pattern_stream;
using torsion::test::Record;
using torsion::test::RecordingFactory;
using torsion::test::server_options;
using torsion::test::TestPki;
using torsion::test::wait_for;

namespace {

// Sends `total` pattern bytes and closes once they all came back.
struct EchoCheck : Protocol {
  std::uint64_t total;
  std::uint64_t& received;
  bool& corrupt;
  bool& lost;
  EchoCheck(std::uint64_t t, std::uint64_t& r, bool& c, bool& l)
      : total(t), received(r), corrupt(c), lost(l) {}
  void connection_made() override {
    transport().write(pattern_stream().bytes(static_cast<std::size_t>(total)));
  }
  void data_received(std::string_view d) override {
    if (!pattern_stream().matches(received, d)) corrupt = true;
    received += d.size();
    if (received >= total) transport().lose_connection();
  }
  void connection_lost(const Reason&) override { lost = true; }
};

}  // namespace

TEST_CASE("relay splice: a TLS side takes the buffered path, inbound or outbound") {
  TestPki pki;
  Reactor reactor;
  TlsServerContext server_context(server_options(pki));
  TlsClientContext client_context(client_options(pki));
  RecordingFactory echo;
  echo.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
  };
  const std::uint64_t total = 4 * 1024 * 1024;
  std::uint64_t received = 0;
  bool corrupt = false, lost = false;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<EchoCheck>(total, received, corrupt, lost);
  });

  bool tls_inbound = false;
  SUBCASE("TLS towards the origin") {}
  SUBCASE("TLS from the client") { tls_inbound = true; }
  CAPTURE(tls_inbound);
  // The origin speaks TLS when the client does not, and the other way round.
  auto origin = tls_inbound ? listen_tcp(reactor, 0, echo, loopback())
                            : listen_ssl(reactor, 0, echo, server_context, "127.0.0.1");
  const int origin_port = origin->port();
  RelayFactory relay([&](std::unique_ptr<Protocol> p) {
    return connect_protocol_with(
        reactor,
        [&](ClientFactory& f) {
          return tls_inbound ? connect_tcp(reactor, "127.0.0.1", origin_port, f)
                             : connect_ssl(reactor, "127.0.0.1", origin_port, f, client_context);
        },
        std::move(p));
  });
  auto relay_port = tls_inbound ? listen_ssl(reactor, 0, relay, server_context, "127.0.0.1")
                                : listen_tcp(reactor, 0, relay, loopback());
  auto connector = tls_inbound
                       ? connect_ssl(reactor, "127.0.0.1", relay_port->port(), client, client_context)
                       : connect_tcp(reactor, "127.0.0.1", relay_port->port(), client);
  REQUIRE(wait_for(reactor, [&] { return lost; }, "4 MiB there and back", 120));
  CHECK(received == total);
  CHECK_FALSE(corrupt);
  CHECK(relay.stats().spliced == 0);
  CHECK(relay.stats().peak_buffered > 0);
  REQUIRE(wait_for(reactor, [&] { return relay.stats().pairs_open == 0; }, "the pair to go"));
  CHECK(relay.stats().failed == 0);
}
