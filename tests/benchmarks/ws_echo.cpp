// ws_echo [--port N]: the torsion WebSocket echo server ws_bench.sh measures: the Router's
// websocket() upgrade at "/" and a WebSocketProtocol that sends every message back, as a
// user writes it. Prints "listening on 127.0.0.1:PORT" first, like torsion_echo.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "framework/reactor.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"
#include "web/websocket_server.hpp"

namespace {

struct Echo final : torsion::web::WebSocketProtocol {
  void message_received(torsion::web::Message m) override { send(std::move(m)); }
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
  torsion::Reactor reactor;
  torsion::web::Router router;
  router.get("/", torsion::web::websocket(reactor, [](torsion::web::Request&) {
    return std::make_unique<Echo>();
  }));
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto listening = torsion::listen_tcp(reactor, port, site, options);
  std::printf("listening on 127.0.0.1:%d\n", listening->port());
  std::fflush(stdout);
  reactor.run();
}
