// connect_websocket against autobahn's WebSocket server (python3-autobahn, asyncio), with
// and without permessage-deflate: echoes, a big message, a ping, and the close handshake
// started by either side. The server runs as a child on 127.0.0.1, port 0 (it prints its
// ports), and is stopped by its PID. A missing python3-autobahn skips with a reason.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/peers.hpp"
#include "web/websocket_client.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::web::test::python_has;
using torsion::web::test::PythonServer;

namespace {

const char* const kServer = R"(
import asyncio
from autobahn.asyncio.websocket import WebSocketServerProtocol, WebSocketServerFactory
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
class Echo(WebSocketServerProtocol):
    def onConnect(self, request):
        return 'v1' if 'v1' in request.protocols else None
    def onMessage(self, payload, isBinary):
        if payload == b'close please':
            self.sendClose(4002, 'asked')
        else:
            self.sendMessage(payload, isBinary)
def accept(offers):
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
ports = []
for compress in (True, False):
    factory = WebSocketServerFactory()
    factory.protocol = Echo
    if compress:
        factory.setProtocolOptions(perMessageCompressionAccept=accept)
    server = loop.run_until_complete(loop.create_server(factory, '127.0.0.1', 0))
    ports.append(server.sockets[0].getsockname()[1])
print(ports[0], ports[1], flush=True)
loop.run_forever()
)";

// Records pongs; messages go to receive().
struct Client : WebSocketProtocol {
  void pong_received(std::string_view payload) override { pongs += std::string(payload) + ";"; }
  std::string pongs;
};

// One conversation; `server_closes`: the server starts the close handshake, else we do.
Task<std::string> talk(Reactor& reactor, int port, bool server_closes) {
  auto client = std::make_shared<Client>();
  WebSocketClientOptions options;
  options.subprotocols = {"v1"};
  co_await connect_websocket(reactor, "ws://127.0.0.1:" + std::to_string(port) + "/", client, options);
  std::string out = std::string(client->compression() ? "z" : "-") + " " + client->subprotocol();
  client->send_text("gr\xc3\xbc\xc3\x9f" + std::string(1000, '!'));
  out += "|" + std::to_string((co_await client->receive()).data.size());
  const std::string big(300000, '\x5a');
  client->send_binary(big);
  const Message echo = co_await client->receive();
  out += "|" + std::string(echo.binary() && echo.data == big ? "big" : "bad");
  client->ping("are you there");
  client->send_text("after the ping");  // its echo comes after the pong
  out += "|" + (co_await client->receive()).data + "|" + client->pongs;
  if (server_closes)
    client->send_text("close please");
  else
    client->close(1000, "done");
  try {
    co_await client->receive();
    out += "|no close";
  } catch (const WebSocketClosedError& e) {
    // The status is the peer's close frame: autobahn echoes our code without a reason.
    const std::string& reason = e.status().reason;
    out += "|" + std::to_string(e.status().code) + (reason.empty() ? "" : " " + reason) +
           (e.status().clean ? " clean" : "");
  }
  co_return out;
}

std::string run(Reactor& reactor, int port, bool server_closes) {
  std::optional<std::string> result;
  std::string error;
  talk(reactor, port, server_closes)
      .deferred()
      .add_callbacks([&](std::string v) { result = std::move(v); },
                     [&](std::exception_ptr e) { error = describe_error(e); });
  REQUIRE(torsion::test::wait_for(reactor, [&] { return result || !error.empty(); }, "the conversation"));
  INFO(error);
  REQUIRE(result);
  return *result;
}

}  // namespace

TEST_CASE("websocket_client_autobahn: torsion's client against autobahn's server, compressed or not") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  if (!python_has(reactor, "autobahn.asyncio.websocket")) {
    MESSAGE("skipped: python3-autobahn is not installed");
    return;
  }
  PythonServer server(reactor, kServer);
  INFO(server.child.err);
  REQUIRE(server.ports.size() == 2);
  const int compressed = server.ports[0], plain = server.ports[1];

  const std::string middle = "|1006|big|after the ping|are you there;";
  CHECK(run(reactor, compressed, true) == "z v1" + middle + "|4002 asked clean");
  CHECK(run(reactor, compressed, false) == "z v1" + middle + "|1000 clean");
  CHECK(run(reactor, plain, true) == "- v1" + middle + "|4002 asked clean");
  CHECK(run(reactor, plain, false) == "- v1" + middle + "|1000 clean");

  server.stop();
}
