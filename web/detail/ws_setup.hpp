#pragma once
// Private: how the server upgrade and the client connect prepare a WebSocketProtocol
// before it gets its transport (the scheduler for its timers, its side, the subprotocol,
// permessage-deflate).

#include <string>

#include "framework/delayed_call.hpp"
#include "web/websocket.hpp"

namespace torsion::web::detail {

struct WsDeflateAgreement;

struct WsSetup {
  // `deflate` (with its options): permessage-deflate was agreed.
  static void start(WebSocketProtocol& protocol, Scheduler& scheduler, WsRole role,
                    std::string subprotocol = {}, const WsDeflateAgreement* deflate = nullptr,
                    const WsDeflateOptions* deflate_options = nullptr);
};

}  // namespace torsion::web::detail
