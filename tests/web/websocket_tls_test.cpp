// wss:// in connect_websocket, against torsion's WebSocket server over listen_ssl with a
// certificate made at test time: verified when the CA is trusted, refused otherwise.

#include "web/websocket_client.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/tls.hpp"
#include "web/router.hpp"
#include "web/websocket_server.hpp"

using namespace torsion;
using namespace torsion::web;

namespace {

struct Echo : WebSocketProtocol {
  void message_received(Message m) override { send_text("tls " + m.data); }
};

// What connect_websocket ended with, then the first message's answer.
struct Result {
  std::shared_ptr<WebSocketProtocol> ws;
  std::exception_ptr error;
  std::optional<std::string> reply;
};

}  // namespace

TEST_CASE("websocket_tls: wss with a verified certificate; refused when it does not verify") {
  test::TestPki pki;
  Reactor reactor;
  reactor.set_handle_signals(false);
  Router router;
  router.get("/ws", websocket(reactor, [](Request&) { return std::make_unique<Echo>(); }));
  HttpFactory site(reactor, router);
  TlsServerContext context(test::server_options(pki));
  auto port = listen_ssl(reactor, 0, site, context, "127.0.0.1");
  const std::string url = "wss://127.0.0.1:" + std::to_string(port->port()) + "/ws";

  WebSocketClientOptions trusted;
  trusted.ca_file = pki.ca_file;
  Result ok;
  connect_websocket(reactor, url, trusted)
      .add_callbacks([&](std::shared_ptr<WebSocketProtocol> ws) { ok.ws = std::move(ws); },
                     [&](std::exception_ptr e) { ok.error = e; });
  REQUIRE(test::wait_for(reactor, [&] { return ok.ws || ok.error; }, "the wss connect"));
  REQUIRE(ok.ws);
  ok.ws->send_text("hello");
  ok.ws->receive().add_callback([&](Message m) { ok.reply = m.data; });
  REQUIRE(test::wait_for(reactor, [&] { return ok.reply.has_value(); }, "the echo over TLS"));
  CHECK(*ok.reply == "tls hello");
  ok.ws->close();
  REQUIRE(test::wait_for(reactor, [&] { return !ok.ws->has_transport(); }, "the close"));

  Result refused;
  connect_websocket(reactor, url)  // the system's trust store does not know the test CA
      .add_callbacks([&](std::shared_ptr<WebSocketProtocol> ws) { refused.ws = std::move(ws); },
                     [&](std::exception_ptr e) { refused.error = e; });
  REQUIRE(test::wait_for(reactor, [&] { return refused.ws || refused.error; }, "the refused wss connect"));
  CHECK_FALSE(refused.ws);
  try {
    std::rethrow_exception(refused.error);
  } catch (const ConnectionError& e) {
    CHECK(e.reason().is(error::tls_failed));
  }
}
