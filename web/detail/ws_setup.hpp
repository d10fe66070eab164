#pragma once
// Private: how the server upgrade and the client connect prepare a WebSocketProtocol
// before it gets its transport (the scheduler for its timers, its side, the subprotocol).

#include <string>

#include "framework/delayed_call.hpp"
#include "web/websocket.hpp"

namespace torsion::web::detail {

struct WsSetup {
  static void start(WebSocketProtocol& protocol, Scheduler& scheduler, WsRole role,
                    std::string subprotocol = {});
};

}  // namespace torsion::web::detail
