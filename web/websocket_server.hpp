#pragma once
/// \file
/// The server side of the WebSocket opening handshake (RFC 6455 4.2): a Handler for the
/// Router that checks the upgrade request, negotiates a subprotocol, asks an origin hook,
/// answers 101 and hands the connection to a WebSocketProtocol.
///
///     router.get("/echo", websocket(reactor, [](Request&) { return std::make_unique<Echo>(); }));

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/delayed_call.hpp"
#include "web/http_server.hpp"
#include "web/websocket.hpp"

namespace torsion::web {

/// How websocket() accepts connections.
struct WebSocketServerOptions {
  /// Subprotocols this server speaks, best first; the first one the client offers is
  /// chosen (none: the handshake names none). A client offering only others still
  /// connects, without a subprotocol, as RFC 6455 allows.
  std::vector<std::string> subprotocols;
  /// Called with the request (its Origin field, its path...); false refuses it with 403.
  /// Unset: every origin is accepted.
  std::function<bool(const Request&)> check_origin;
  /// permessage-deflate: accepted when a client offers it, unless deflate.enabled is
  /// false (the first acceptable offer wins; one this side cannot honour is passed over).
  WsDeflateOptions deflate;
};

/// Builds the protocol for an accepted request (path parameters are there); null
/// refuses it with 403.
using WebSocketBuilder = std::function<std::unique_ptr<WebSocketProtocol>(Request&)>;

/// A Handler that upgrades to WebSocket: GET, HTTP/1.1, `Upgrade: websocket`, `Connection:
/// Upgrade`, a `Sec-WebSocket-Key` of 16 bytes in base64 and `Sec-WebSocket-Version: 13`.
/// Answers 426 with `Sec-WebSocket-Version: 13` to another version or to a plain request,
/// 400 to a malformed one, 403 when check_origin or `build` refuses; otherwise 101 with
/// `Sec-WebSocket-Accept` (and `Sec-WebSocket-Extensions` when permessage-deflate was
/// agreed), and the protocol gets the connection. Timers run on `scheduler`. Throws
/// std::invalid_argument for deflate options out of range.
Handler websocket(Scheduler& scheduler, WebSocketBuilder build, WebSocketServerOptions options = {});

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (base64 of the SHA-1 of the key
/// and RFC 6455's GUID).
std::string websocket_accept(std::string_view key);

}  // namespace torsion::web
