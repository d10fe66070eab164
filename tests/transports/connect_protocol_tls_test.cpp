// connect_protocol over a TLS endpoint string: the protocol fires after the handshake and
// its connection_made, and sees tls_info through its transport.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/tls.hpp"
#include "transports/tls_endpoints.hpp"

using namespace torsion;
using torsion::test::TestPki;
using torsion::test::wait_for;

namespace {

struct Echo : Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

struct Hello : Protocol {
  std::string heard;
  std::optional<TlsInfo> info;
  void connection_made() override {
    info = tls_info(transport());
    transport().write("over tls");
  }
  void data_received(std::string_view data) override { heard.append(data); }
};

}  // namespace

TEST_CASE("connect_protocol over a tls: endpoint string") {
  register_tls_endpoints();
  TestPki pki;
  Reactor reactor;
  auto echo = make_factory<Echo>();
  auto port = server_from_string(reactor, "ssl:0:interface=127.0.0.1:privateKey=" + pki.key_file +
                                              ":certKey=" + pki.cert_file)
                  ->listen(echo);
  Hello* got = nullptr;
  auto d = connect_protocol(reactor,
                            "tls:127.0.0.1:" + std::to_string(port->port()) +
                                ":trustRoots=" + pki.ca_file + ":hostname=localhost",
                            std::make_unique<Hello>());
  auto done = std::move(d).add_callback([&](Hello& hello) { got = &hello; });
  wait_for(reactor, [&] { return got != nullptr; }, "the TLS connection");
  CHECK(got->info.has_value());  // connection_made ran after the handshake
  wait_for(reactor, [&] { return got->heard == "over tls"; }, "the echo over TLS");
  got->transport().lose_connection();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "nothing left open");
}
