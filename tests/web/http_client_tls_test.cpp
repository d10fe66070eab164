// https:// in http_request and HttpPool, against torsion's server over listen_ssl with a
// certificate made at test time (tests/support/tls_certs.hpp); built only with OpenSSL.
#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "framework/reactor.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/client_support.hpp"
#include "transports/tls.hpp"
#include "web/http_client.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::Counting;
using torsion::test::Fetched;

namespace {

// The https request's outcome.
Fetched await_response(Reactor& reactor, Deferred<ClientResponse> d) {
  return test::await_response(reactor, std::move(d), "the https request");
}

}  // namespace

TEST_CASE("http_client: https with a verified certificate, reused by a pool; refused when it does not verify") {
  test::TestPki pki;
  Reactor reactor;
  Router router;
  router.get("/hello", [](Request&, Response& res) { res.end("hello over tls"); });
  HttpFactory site(reactor, router);
  Counting counting(site);
  TlsServerOptions server;
  server.certificate_chain_file = pki.cert_file;
  server.private_key_file = pki.key_file;
  TlsServerContext context(server);
  auto port = listen_ssl(reactor, 0, counting, context, "127.0.0.1");
  const std::string url = "https://127.0.0.1:" + std::to_string(port->port()) + "/hello";
  HttpClientOptions trusted;
  trusted.ca_file = pki.ca_file;

  const Fetched lone = await_response(reactor, http_request(reactor, "GET", url, {}, {}, trusted));
  REQUIRE(lone.response);
  CHECK(lone.response->status == 200);
  CHECK(lone.response->body == "hello over tls");
  CHECK(counting.accepted == 1);

  {
    HttpPool pool(reactor);
    for (int i = 0; i < 3; ++i) {
      const Fetched o = await_response(reactor, pool.request("GET", url, {}, {}, trusted));
      REQUIRE(o.response);
      CHECK(o.response->body == "hello over tls");
    }
    CHECK(counting.accepted == 2);  // one more connection, kept for the three
    CHECK(pool.idle_count() == 1);
    // Plain http to the same host and port is another pool entry, not the TLS connection.
    const Fetched plain = await_response(reactor, pool.request("GET", "http://127.0.0.1:" + std::to_string(port->port()) + "/hello"));
    CHECK(plain.error);
  }

  // The system's trust store does not know the test CA: the handshake fails and says why.
  const Fetched untrusted = await_response(reactor, http_request(reactor, "GET", url));
  REQUIRE(untrusted.error);
  CHECK(error_is<ConnectionError>(untrusted.error));
  CHECK(describe_error(untrusted.error).find("certificate verify failed") != std::string::npos);

  // A certificate for another name: trusted issuer, wrong host.
  TlsServerOptions other;
  other.certificate_chain_file = pki.other_cert_file;
  other.private_key_file = pki.other_key_file;
  TlsServerContext other_context(other);
  auto other_port = listen_ssl(reactor, 0, counting, other_context, "127.0.0.1");
  const Fetched mismatch = await_response(reactor, http_request(reactor, "GET",
      "https://127.0.0.1:" + std::to_string(other_port->port()) + "/hello", {}, {}, trusted));
  REQUIRE(mismatch.error);
  CHECK(error_is<ConnectionError>(mismatch.error));
  INFO(describe_error(mismatch.error));
  CHECK(describe_error(mismatch.error).find("certificate verify failed") != std::string::npos);
  CHECK(counting.accepted == 2);

  HttpClientOptions missing;
  missing.ca_file = pki.dir + "/no-such-ca.pem";
  CHECK_THROWS_AS(http_request(reactor, "GET", url, {}, {}, missing), std::invalid_argument);
  CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "connections closed"));
}
