// Callbacks a WebSocketProtocol hands out are bound to it, as every protocol's are
// (docs/protocols-and-factories.md, "Callbacks that outlive their protocol"): after an
// HTTP upgrade the HTTP layer (server) or the handshake protocol (client) forwards the
// bytes, and it puts the WebSocketProtocol in scope as it does, so a [this] timer or
// Deferred callback set in message_received never runs once the protocol is destroyed.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/websocket_recorder.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"
#include "web/websocket_client.hpp"
#include "web/websocket_server.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;
using torsion::web::test::ws_frame;

namespace {

// What the callbacks touch: outside the protocol, reached through a member of it (so a
// callback run after the protocol is destroyed reads freed memory, which ASan reports,
// and counts a run the test then sees).
struct Counts {
  int timers = 0;
  int callbacks = 0;
};

// On every message, sets a timer in one second and a callback on a Deferred that the
// test fires, both capturing only `this`.
struct Later : WebSocketProtocol {
  Later(Scheduler& scheduler, Counts& counts, std::vector<Deferred<int>>& pending)
      : scheduler_(scheduler), counts_(counts), pending_(pending) {}
  void message_received(Message) override {
    timers_.push_back(scheduler_.call_later(1.0, [this] { counts_.timers++; }));
    Deferred<int> d;
    pending_.push_back(d);
    d.add_callback([this](int) { counts_.callbacks++; });
  }
  Scheduler& scheduler_;
  Counts& counts_;
  std::vector<Deferred<int>>& pending_;
  std::vector<DelayedCall> timers_;
};

const std::string kUpgrade =
    "GET /later HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

void fire_all(std::vector<Deferred<int>>& pending) {
  for (auto& d : pending)
    if (!d.called()) d.callback(1);
}

}  // namespace

TEST_CASE("websocket_binding: after the server's upgrade, callbacks set in message_received die with the protocol") {
  ManualClock clock;
  Counts counts;
  std::vector<Deferred<int>> pending;
  Router router;
  router.get("/later", websocket(clock, [&](Request&) {
               return std::make_unique<Later>(clock, counts, pending);
             }));
  HttpFactory factory(clock, router);
  StringTransport transport;
  auto http = factory.build_protocol(transport.get_peer());
  transport.connect(*http);
  // One message with the request (delivered as the upgraded protocol starts), one after.
  transport.receive(kUpgrade + ws_frame(WsOpcode::text, "a"));
  clock.advance(0);
  transport.receive(ws_frame(WsOpcode::text, "b"));
  REQUIRE(pending.size() == 2);
  // While the protocol lives, they run.
  clock.advance(1.0);
  pending[0].callback(1);
  CHECK(counts.timers == 2);
  CHECK(counts.callbacks == 1);
  transport.receive(ws_frame(WsOpcode::text, "c"));
  REQUIRE(pending.size() == 3);
  transport.disconnect();  // the WebSocketProtocol is destroyed with the connection
  clock.advance(2.0);
  fire_all(pending);
  CHECK(counts.timers == 2);
  CHECK(counts.callbacks == 1);
}

TEST_CASE("websocket_binding: a client's callbacks set in message_received die with the protocol") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  Router router;
  struct Talker : WebSocketProtocol {
    void connection_opened() override {
      send_text("one");
      send_text("two");
    }
  };
  router.get("/talk", websocket(reactor, [](Request&) { return std::make_unique<Talker>(); }));
  HttpFactory site(reactor, router);
  TcpListenOptions listen;
  listen.interface = "127.0.0.1";
  auto port = listen_tcp(reactor, 0, site, listen);
  Counts counts;
  std::vector<Deferred<int>> pending;
  auto client = std::make_shared<Later>(reactor, counts, pending);
  const std::weak_ptr<Later> alive = client;
  bool connected = false;
  connect_websocket(reactor, "ws://127.0.0.1:" + std::to_string(port->port()) + "/talk", client)
      .add_callback([&](std::shared_ptr<WebSocketProtocol>) { connected = true; });
  REQUIRE(torsion::test::wait_for(reactor, [&] { return pending.size() == 2; }, "two messages"));
  REQUIRE(connected);
  pending[0].callback(1);  // while the protocol lives, it runs
  CHECK(counts.callbacks == 1);
  client->close();
  client.reset();
  REQUIRE(torsion::test::wait_for(reactor, [&] { return alive.expired(); },
                                  "the protocol destroyed with its connection"));
  fire_all(pending);
  CHECK(counts.callbacks == 1);  // the timers, the same binding, are shown on the clock above
}
