#pragma once
/// \file
/// The client side of WebSocket: connect_websocket opens a ws:// or wss:// URL, runs the
/// opening handshake (RFC 6455 4.1) and hands the connection to a WebSocketProtocol,
/// usable from callbacks (its events), Deferreds and coroutines:
///
///     auto ws = co_await connect_websocket(reactor, "ws://127.0.0.1:8080/echo");
///     ws->send_text("hi");
///     Message reply = co_await ws->receive();

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "web/http_message.hpp"
#include "web/websocket.hpp"

namespace torsion::web {

/// How connect_websocket connects; every time is in seconds, 0 turns it off.
struct WebSocketClientOptions {
  /// Subprotocols to offer, best first (Sec-WebSocket-Protocol); the server's choice is
  /// then the protocol's subprotocol().
  std::vector<std::string> subprotocols;
  /// More request fields (Origin, Authorization, cookies...).
  Headers headers;
  /// The TCP connect (and TLS handshake, for wss).
  double connect_timeout = 30;
  /// From connected to the server's 101.
  double handshake_timeout = 10;
  /// wss: a PEM file of the CAs to trust, instead of the system's trust store.
  /// Verification is always on (the chain and the host name in the URL).
  std::string ca_file;
  /// The largest response head accepted.
  std::size_t max_head = 16 * 1024;
  /// permessage-deflate: offered unless deflate.enabled is false; the server's answer
  /// must keep to the offer (else the handshake fails with HttpError 502).
  WsDeflateOptions deflate;
};

/// Connects `protocol` (a WebSocketProtocol or a subclass, in a shared_ptr so that the
/// caller may keep it as long as it likes) to `url`: ws://host[:port]/path (port 80) or
/// wss:// (443, connect_ssl with verification on). The Deferred fires with `protocol` once
/// the handshake succeeded, right after its connection_opened(). It fails with
/// ConnectionError (refused, TLS failure, lost), HttpError (a status other than 101, or a
/// response that does not complete the handshake: wrong Sec-WebSocket-Accept, a
/// subprotocol or extension not offered) or TimeoutError; cancelling it closes the
/// connection. Throws std::invalid_argument for a URL that is not ws:// or wss://, or
/// deflate options out of range.
/// Once the connection is over, the protocol's sends do nothing: a kept shared_ptr never
/// refers to freed memory.
Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url,
                                                               std::shared_ptr<WebSocketProtocol> protocol,
                                                               const WebSocketClientOptions& options);
/// connect_websocket with the default options. (Overloads rather than a default
/// argument: g++ 12 miscompiles a defaulted class-type argument inside co_await.)
Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url,
                                                               std::shared_ptr<WebSocketProtocol> protocol);
/// connect_websocket with a plain WebSocketProtocol, whose messages are read with
/// receive().
Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url,
                                                               const WebSocketClientOptions& options);
/// connect_websocket with a plain WebSocketProtocol and the default options.
Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url);

}  // namespace torsion::web
