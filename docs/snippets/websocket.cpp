// docs/websocket.md's snippets, with their own test case (they need torsion_web).
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"
#include "web/websocket.hpp"
#include "web/websocket_client.hpp"
#include "web/websocket_server.hpp"

namespace docs {
namespace {

// [snippet:echo-protocol]
// A server-side protocol: answers every message; connection_closed tells how it ended.
struct Shout : torsion::web::WebSocketProtocol {
  void connection_opened() override { send_text("welcome"); }
  void message_received(torsion::web::Message message) override {
    if (message.text())
      send_text(message.data + "!");
    else
      send(std::move(message));  // as it came, its bytes taken rather than copied
  }
  void connection_closed(const torsion::web::WsCloseStatus& status) override {
    closes += status.clean ? 1 : 0;
  }
  static inline int closes = 0;
};
// [end]

// [snippet:client-coroutine]
torsion::Task<std::string> talk(torsion::Reactor& reactor, std::string url) {
  auto ws = co_await torsion::web::connect_websocket(reactor, url);
  std::string heard = (co_await ws->receive()).data;  // "welcome"
  ws->send_text("hello");
  heard += " " + (co_await ws->receive()).data;       // "hello!"
  ws->close(1000, "bye");
  co_return heard;
}
// [end]

// [snippet:deflate-client]
// permessage-deflate is offered by default; this client also compresses each message on
// its own, keeping no window between messages.
torsion::Task<std::string> squeeze(torsion::Reactor& reactor, std::string url) {
  torsion::web::WebSocketClientOptions options;
  options.deflate.no_context_takeover = true;
  auto ws = co_await torsion::web::connect_websocket(reactor, url, options);
  co_await ws->receive();                   // "welcome"
  ws->send_text(std::string(100000, 'z'));  // a few hundred bytes on the wire
  const torsion::web::Message echo = co_await ws->receive();
  ws->close();
  co_return (ws->compression() ? "compressed " : "plain ") + std::to_string(echo.data.size());
}
// [end]

// Serves `router` on 127.0.0.1 (a port the system chose, where a program would name one)
// and runs `client` against its /shout until the client's result is in and `also` holds.
std::string serve_and_run(torsion::Reactor& reactor, torsion::web::Router& router,
                          torsion::Task<std::string> (*client)(torsion::Reactor&, std::string),
                          const std::function<bool()>& also = [] { return true; }) {
  reactor.set_handle_signals(false);
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  const std::string url = "ws://127.0.0.1:" + std::to_string(port->port()) + "/shout";
  std::optional<std::string> result;
  client(reactor, url).deferred().add_callback([&](std::string s) { result = std::move(s); });
  REQUIRE(reactor.run_until([&] { return result.has_value() && also(); }, 30));
  return *result;
}

}  // namespace

TEST_CASE("websocket: permessage-deflate, with less memory per connection") {
  torsion::Reactor reactor;
  torsion::web::Router router;
  // [snippet:deflate-server]
  torsion::web::WebSocketServerOptions options;
  options.deflate.window_bits = 9;                  // a 512-byte window for what it sends
  options.deflate.peer_window_bits = 10;            // clients asked for at most 1 KiB
  options.deflate.peer_no_context_takeover = true;  // and to keep no window between messages
  router.get("/shout", torsion::web::websocket(reactor, [](torsion::web::Request&) {
    return std::make_unique<Shout>();
  }, options));
  // [end]
  CHECK(serve_and_run(reactor, router, squeeze) == "compressed 100001");
}

TEST_CASE("websocket: a server and a coroutine client") {
  torsion::Reactor reactor;
  // [snippet:server]
  torsion::web::Router router;
  torsion::web::WebSocketServerOptions options;
  options.subprotocols = {"shout.v1"};  // chosen if the client offers it
  options.check_origin = [](const torsion::web::Request& request) {
    return request.header("Origin").value_or("http://localhost") == "http://localhost";
  };
  router.get("/shout", torsion::web::websocket(reactor, [](torsion::web::Request&) {
    return std::make_unique<Shout>();
  }, options));
  // [end]
  CHECK(serve_and_run(reactor, router, talk, [] { return Shout::closes == 1; }) == "welcome hello!");
}

}  // namespace docs
