// docs/transports.md's TLS operator snippets: a certificate reloaded without a restart,
// and session resumption on both sides. Built only where OpenSSL is found.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "tests/support/tls_certs.hpp"
#include "transports/tls.hpp"

namespace docs {
namespace {

class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

// Writes "ping", notes what tls_info says, closes on the echo.
class Ping : public torsion::Protocol {
 public:
  explicit Ping(std::optional<torsion::TlsInfo>& info) : info_(info) {}
  void connection_made() override {
    info_ = torsion::tls_info(transport());
    transport().write("ping");
  }
  void data_received(std::string_view) override { transport().lose_connection(); }

 private:
  std::optional<torsion::TlsInfo>& info_;
};

// What clients see over three connections: a full handshake, a resumed one, and after a
// reload a new client's. Returns the common names and whether each resumed.
std::string reload_and_resume(torsion::Reactor& reactor, const torsion::test::TestPki& pki) {
  auto echo = torsion::make_factory<Echo>();
  const std::string cert = pki.cert_file, key = pki.key_file;
  const std::string renewed_cert = pki.other_cert_file, renewed_key = pki.other_key_file;
  // [snippet:reload]
  torsion::TlsServerOptions options;
  options.certificate_chain_file = cert;
  options.private_key_file = key;
  // Keep a non-const pointer to reload through; the port shares it.
  auto context = std::make_shared<torsion::TlsServerContext>(options);
  auto port = torsion::listen_ssl(reactor, 0, echo, context, "127.0.0.1");
  // ... later, when the certificate has been renewed (e.g. on SIGHUP):
  options.certificate_chain_file = renewed_cert;
  options.private_key_file = renewed_key;
  const auto reload = [&] {
    context->reload(options);  // throws, changing nothing, if the files are bad
  };
  // [end]
  std::string out;
  std::optional<torsion::TlsInfo> info;
  torsion::FunctionFactory<torsion::ClientFactory> ping(
      [&](const torsion::Address&) { return std::make_unique<Ping>(info); });
  torsion::TlsClientOptions client;
  client.verify_peer = false;  // the renewed certificate names another host
  // [snippet:resume]
  client.reuse_sessions = true;  // offer the last session of the same server
  auto client_context = std::make_shared<const torsion::TlsClientContext>(client);
  // ... every connect_ssl with client_context to the same server resumes when it can:
  // tls_info(transport())->resumed tells, on both sides.
  // [end]
  client.reuse_sessions = false;
  auto fresh = std::make_shared<const torsion::TlsClientContext>(client);
  const auto connect = [&](std::shared_ptr<const torsion::TlsClientContext> with) {
    info.reset();
    auto c = torsion::connect_ssl(reactor, "127.0.0.1", port->port(), ping, std::move(with));
    reactor.run_until([&] { return reactor.connection_count() == 0 && info; }, 10);
    out += info ? info->peer_common_name + (info->resumed ? " resumed;" : " full;") : "none;";
  };
  connect(client_context);
  connect(client_context);
  reload();
  connect(fresh);
  port->stop_listening();
  return out;
}

}  // namespace

TEST_CASE("transports: a TLS certificate reloaded, a session resumed") {
  torsion::test::TestPki pki;
  torsion::Reactor reactor;
  CHECK(reload_and_resume(reactor, pki) == "localhost full;localhost resumed;other.test full;");
}

}  // namespace docs
