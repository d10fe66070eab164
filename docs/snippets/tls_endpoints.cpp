// docs/endpoints.md's TLS snippet. Built (and its test run) only where OpenSSL is found,
// so its test case lives here rather than in docs/snippets_test.cpp.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "tests/support/tls_certs.hpp"
#include "transports/endpoints.hpp"
#include "transports/tls.hpp"
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
  // [snippet:tls]
  torsion::register_tls_endpoints();  // once, at start-up; link torsion_tls (torsion_tls_dep)

  // escape_endpoint_value puts a backslash before any ':', '=' or '\' in the paths.
  const std::string server = "ssl:0:interface=127.0.0.1:privateKey=" +
                             torsion::escape_endpoint_value(key) +
                             ":certKey=" + torsion::escape_endpoint_value(cert);
  auto port = torsion::server_from_string(reactor, server)
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

// Answers each client with the common name of the certificate it presented.
class Greeter : public torsion::Protocol {
 public:
  // [snippet:peer]
  void connection_made() override {
    const auto info = torsion::tls_info(transport());  // nullopt on a non-TLS transport
    if (info && info->peer_certificate)  // verified: an untrusted one fails the handshake
      transport().write("hello " + info->peer_common_name);
    else
      transport().write("hello stranger");  // possible with VerifyClient::optional only
    transport().lose_connection();
  }
  // [end]
};

class Collect : public torsion::Protocol {
 public:
  explicit Collect(std::string& got) : got_(got) {}
  void data_received(std::string_view data) override { got_.append(data); }

 private:
  std::string& got_;
};

// A server that requires client certificates, in C++ and as an endpoint string; the
// client presents `client_cert` (signed by `ca`).
std::string mutual_tls(torsion::Reactor& reactor, const torsion::test::TestPki& pki) {
  const std::string& key = pki.key_file;
  const std::string& cert = pki.cert_file;
  const std::string& ca = pki.ca_file;
  auto greeter = torsion::make_factory<Greeter>();
  std::string failed;
  // [snippet:mutual]
  torsion::TlsServerOptions options;
  options.certificate_chain_file = cert;
  options.private_key_file = key;
  options.verify_client = torsion::VerifyClient::required;  // or optional
  options.ca_file = ca;  // the CAs whose client certificates are trusted (or ca_directory)
  options.handshake_failed = [&](const torsion::Address&, const torsion::Reason& why) {
    failed = why.message();  // e.g. "... peer did not return a certificate ..."
  };
  auto context = std::make_shared<const torsion::TlsServerContext>(options);
  auto port = torsion::listen_ssl(reactor, 0, greeter, context, "127.0.0.1");

  // The same server from a string: caCertsDir (a file or a directory) turns it on.
  auto port2 = torsion::server_from_string(reactor, "ssl:0:interface=127.0.0.1:privateKey=" +
                                                        key + ":certKey=" + cert +
                                                        ":caCertsDir=" + ca +
                                                        ":verifyClient=required")
                   ->listen(greeter);
  // [end]
  std::string got, got2;
  torsion::FunctionFactory<torsion::ClientFactory> c1(
      [&](const torsion::Address&) { return std::make_unique<Collect>(got); });
  torsion::FunctionFactory<torsion::ClientFactory> c2(
      [&](const torsion::Address&) { return std::make_unique<Collect>(got2); });
  const std::string client = ":trustRoots=" + ca + ":hostname=localhost:certificate=" +
                             pki.client_cert_file + ":privateKey=" + pki.client_key_file;
  auto k1 = torsion::client_from_string(reactor, "tls:127.0.0.1:" + std::to_string(port->port()) +
                                                     client)->connect(c1);
  auto k2 = torsion::client_from_string(reactor, "tls:127.0.0.1:" + std::to_string(port2->port()) +
                                                     client)->connect(c2);
  reactor.run_until([&] { return got.size() == 20 && got2.size() == 20; }, 10);
  port->stop_listening();
  port2->stop_listening();
  return got + "|" + got2 + "|" + failed;
}

}  // namespace

TEST_CASE("transports: mutual TLS") {
  torsion::test::TestPki pki;
  torsion::Reactor reactor;
  torsion::register_tls_endpoints();
  CHECK(mutual_tls(reactor, pki) == "hello torsion client|hello torsion client|");
}

TEST_CASE("endpoints: ssl and tls from strings") {
  torsion::test::TestPki pki;
  torsion::Reactor reactor;
  CHECK(echo_over_tls(reactor, pki.key_file, pki.cert_file, pki.ca_file) == "ping");
}

}  // namespace docs
