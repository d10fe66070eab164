// docs/endpoints.md's TLS snippet. Built (and its test run) only where OpenSSL is found,
// so its test case lives here rather than in docs/snippets_test.cpp.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "tests/support/tls_certs.hpp"
#include "transports/endpoints.hpp"
#include "transports/tls_endpoints.hpp"

namespace docs {
namespace {

class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

class Ping : public torsion::Protocol {
 public:
  explicit Ping(std::string& got) : got_(got) {}
  void connection_made() override { transport().write("ping"); }
  void data_received(std::string_view data) override {
    got_.append(data);
    if (got_.size() == 4) transport().lose_connection();
  }

 private:
  std::string& got_;
};

// An echo over ssl: and tls: endpoints; `key`, `cert` and `ca` are PEM files.
std::string echo_over_tls(torsion::Reactor& reactor, const std::string& key,
                          const std::string& cert, const std::string& ca) {
  std::string got;
  auto echo = torsion::make_factory<Echo>();
  torsion::FunctionFactory<torsion::ClientFactory> ping(
      [&](const torsion::Address&) { return std::make_unique<Ping>(got); });
  using torsion::escape_endpoint_value;
  // [snippet:tls]
  torsion::register_tls_endpoints();  // once, at start-up; link torsion_tls (torsion_tls_dep)

  auto port = torsion::server_from_string(reactor, "ssl:0:interface=127.0.0.1:privateKey=" +
                                                       escape_endpoint_value(key) + ":certKey=" +
                                                       escape_endpoint_value(cert))
                  ->listen(echo);  // the endpoint may go: the port keeps its TLS context

  // The server is verified (chain, and name or address) against the CAs in `ca`.
  auto connector = torsion::client_from_string(reactor, "tls:127.0.0.1:" +
                                                            std::to_string(port->port()) +
                                                            ":trustRoots=" + ca + ":timeout=5")
                       ->connect(ping);
  // [end]
  reactor.run_until([&] { return got.size() == 4; }, 10);
  port->stop_listening();
  return got;
}

}  // namespace

TEST_CASE("endpoints: ssl and tls from strings") {
  torsion::test::TestPki pki;
  torsion::Reactor reactor;
  CHECK(echo_over_tls(reactor, pki.key_file, pki.cert_file, pki.ca_file) == "ping");
}

}  // namespace docs
