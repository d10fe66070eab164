// torsion's HTTPS server (listen_ssl + HttpFactory, with the test PKI of
// tests/support/tls_certs.hpp) against curl with --cacert; built only with OpenSSL. A
// missing curl skips the case with a printed reason.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/client_support.hpp"
#include "tests/web/peers.hpp"
#include "transports/process.hpp"
#include "transports/tls.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::Counting;
using torsion::web::test::Child;
using torsion::web::test::have;

TEST_CASE("http_tls_peers: curl --cacert against torsion's HTTPS server: GET, POST, reuse, and a refused CA") {
  if (!have("curl")) {
    MESSAGE("skipped: curl is not installed");
    return;
  }
  torsion::test::TestPki pki;
  Reactor reactor;
  reactor.set_handle_signals(false);
  Router router;
  router.get("/hello", [](Request&, Response& res) { res.end("hello over tls"); });
  router.post("/echo", [](Request& req, Response& res) { res.end("got " + req.body()); });
  HttpFactory site(reactor, router);
  Counting counting(site);
  TlsServerOptions server;
  server.certificate_chain_file = pki.cert_file;
  server.private_key_file = pki.key_file;
  TlsServerContext context(server);
  auto port = listen_ssl(reactor, 0, counting, context, "127.0.0.1");
  const std::string base = "https://127.0.0.1:" + std::to_string(port->port());
  auto run = [&](const std::vector<std::string>& argv) {
    Child child;
    spawn_process(reactor, child, argv);
    REQUIRE(torsion::test::wait_for(reactor, [&] { return child.status.has_value(); }, "curl"));
    return child;
  };

  // Three requests over one verified connection.
  const Child c = run({"curl", "-sv", "--cacert", pki.ca_file, base + "/hello", "--next", "--cacert", pki.ca_file,
                       "--data-binary", "secret", base + "/echo", "--next", "--cacert", pki.ca_file,
                       base + "/hello"});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "hello over tlsgot secrethello over tls");
  CHECK(c.err.find("SSL certificate verify ok") != std::string::npos);
  CHECK(c.err.find("Re-using existing connection") != std::string::npos);
  CHECK(counting.accepted == 1);

  // Without the test CA, curl refuses the certificate (exit code 60) and sends nothing.
  const Child refused = run({"curl", "-s", base + "/hello"});
  REQUIRE(refused.status);
  CHECK(refused.status->exit_code == 60);
  CHECK(refused.out.empty());
  CHECK(torsion::test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "connections closed"));
}
