#pragma once
// Helpers shared by the WebSocket protocol tests: an echoing protocol, and a server-side
// protocol on a StringTransport with its timers on a manual clock, with permessage-deflate
// agreed or not.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/web/websocket_recorder.hpp"
#include "web/detail/ws_deflate.hpp"
#include "web/detail/ws_setup.hpp"
#include "web/websocket.hpp"

namespace torsion::web::test {

// Echoes every message and records what happened.
struct Echo : WebSocketProtocol {
  using WebSocketProtocol::WebSocketProtocol;
  void message_received(Message m) override {
    if (m.text())
      send_text(m.data);
    else
      send_binary(m.data);
  }
  void pong_received(std::string_view payload) override { pongs.emplace_back(payload); }
  void connection_closed(const WsCloseStatus& s) override {
    status = s;
    closed_calls++;
  }
  std::vector<std::string> pongs;
  WsCloseStatus status;
  int closed_calls = 0;
};

// A server-side protocol on a StringTransport, with its timers on a manual clock; with
// `deflate`, permessage-deflate was agreed as it says.
template <class P = Echo>
struct WsServer {
  explicit WsServer(WebSocketOptions options = {},
                    std::optional<detail::WsDeflateAgreement> deflate = std::nullopt)
      : protocol(options), deflated(deflate.has_value()) {
    const WsDeflateOptions deflate_options;
    detail::WsSetup::start(protocol, clock, WsRole::server, {}, deflate ? &*deflate : nullptr,
                           deflate ? &deflate_options : nullptr);
    transport.connect(protocol);
  }
  // What the server sent, as a client parses it.
  WsParse sent() {
    WsParserOptions options;
    options.role = WsRole::client;
    options.allow_rsv1 = deflated;
    return ws_parse({transport.value()}, options);
  }
  torsion::testing::ManualClock clock;
  torsion::testing::StringTransport transport;
  P protocol;
  bool deflated;
};

}  // namespace torsion::web::test
