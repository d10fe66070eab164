// HAProxy terminating TLS in front of torsion: a torsion TLS client (with a client
// certificate and SNI) connects to haproxy's `ssl` bind; haproxy forwards the plain bytes
// with send-proxy-v2-ssl-cn and the authority TLV; the torsion backend behind
// ProxyProtocolFactory reads the client's TLS facts from the header's SSL TLV.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "protocols/proxy_protocol.hpp"
#include "tests/protocols/haproxy.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::Haproxy;
using torsion::test::ProxiedBackend;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::Seen;
using torsion::test::TestPki;
using torsion::test::wait_for;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("haproxy send-proxy-v2-ssl: the SSL TLV carries the client's TLS facts") {
  if (!test::have_haproxy()) return;
  Reactor reactor;
  reactor.set_handle_signals(false);
  TestPki pki;
  // haproxy's crt: the certificate and its key in one PEM file.
  const std::string crt = pki.dir + "/haproxy.pem";
  std::ofstream(crt) << read_file(pki.cert_file) << read_file(pki.key_file);

  ProxiedBackend backend(reactor);
  Haproxy haproxy(reactor, backend,
                  "ssl crt " + crt + " ca-file " + pki.ca_file + " verify optional",
                  "send-proxy-v2-ssl-cn proxy-v2-options authority,ssl-cipher,cert-sig,cert-key");
  INFO(haproxy.errors());

  for (const bool with_certificate : {true, false}) {
    CAPTURE(with_certificate);
    TlsClientOptions options = test::client_options(pki);
    options.server_name = "localhost";  // sent as SNI: haproxy passes it on as the authority
    if (with_certificate) {
      options.certificate_file = pki.client_cert_file;
      options.private_key_file = pki.client_key_file;
    }
    auto context = std::make_shared<const TlsClientContext>(options);
    RecordingClientFactory client;
    std::optional<TlsInfo> negotiated;
    client.setup = [&](Record& r) {
      r.on_made = [&](Record& rr) {
        negotiated = tls_info(*rr.transport);
        rr.transport->write("secret");
      };
    };
    const std::size_t before = backend.clients().size();
    connect_ssl(reactor, "127.0.0.1", haproxy.port(), client, context);
    REQUIRE(wait_for(reactor, [&] {
      return !client.records.empty() && client.records[0].received == "secret";
    }, "the echo through haproxy's TLS"));
    const auto clients = backend.clients();
    REQUIRE(clients.size() == before + 1);
    Seen& seen = *clients.back();
    CHECK(seen.received == "secret");  // plain bytes behind haproxy
    CHECK(seen.peer == client.records[0].transport->get_host());
    CHECK(seen.header.authority() == "localhost");
    REQUIRE(seen.header.ssl);
    const ProxySslInfo& ssl = *seen.header.ssl;
    CHECK(ssl.client_ssl());
    REQUIRE(negotiated);
    CHECK(ssl.version() == negotiated->version);  // e.g. "TLSv1.3", as our side saw it
    REQUIRE(ssl.cipher());
    CHECK(*ssl.cipher() == negotiated->cipher);
    if (with_certificate) {
      CHECK(ssl.client_cert_verified());  // sent on this connection, verified by haproxy
      CHECK(ssl.common_name() == "torsion client");
      CHECK(ssl.signature_algorithm() == "ecdsa-with-SHA256");
      CHECK(ssl.key_algorithm() == "EC256");
    } else {
      CHECK_FALSE(ssl.client_cert_verified());
      CHECK_FALSE(ssl.common_name());
    }
    client.records[0].transport->lose_connection();
    REQUIRE(wait_for(reactor, [&] { return client.records[0].lost == 1 && seen.lost; },
                     "both ends closed"));
  }
  CHECK(backend.proxy.rejected_count() == 0);
  haproxy.stop();
}
