// ws_chat [--port N]: a chat room over WebSocket. GET / is a small HTML page whose script
// joins the room at /chat; every text message a member sends goes to every member as
// "userN: text"; a member more than 64 KiB behind is dropped. Prints "listening on
// ADDR:PORT" first, so scripts can find the port.
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include "examples/cli.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"
#include "web/websocket.hpp"
#include "web/websocket_server.hpp"

namespace {

const char* const page = R"(<!doctype html>
<html><head><meta charset="utf-8"><title>torsion WebSocket chat</title></head>
<body><h1>torsion WebSocket chat</h1><pre id="log"></pre>
<form id="form"><input id="text" autocomplete="off"><button>send</button></form>
<script>
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat');
const log = document.getElementById('log'), text = document.getElementById('text');
ws.onmessage = (e) => { log.textContent += e.data + '\n'; };
ws.onclose = () => { log.textContent += '(disconnected)\n'; };
document.getElementById('form').onsubmit = (e) => { e.preventDefault(); ws.send(text.value); text.value = ''; };
</script></body></html>
)";

class Member;

// The members present; shared by every member (and the handler), so none outlives it.
struct Room {
  std::set<Member*> members;
  int joined = 0;
  void broadcast(const std::string& line);
};

class Member final : public torsion::web::WebSocketProtocol {
 public:
  explicit Member(std::shared_ptr<Room> room) : room_(std::move(room)) {}
  void connection_opened() override {
    name_ = "user" + std::to_string(++room_->joined);
    room_->members.insert(this);
    room_->broadcast(name_ + " joined");
  }
  void message_received(torsion::web::Message message) override {
    if (message.text()) room_->broadcast(name_ + ": " + message.data);
  }
  void connection_closed(const torsion::web::WsCloseStatus&) override {
    if (room_->members.erase(this) != 0) room_->broadcast(name_ + " left");
  }

 private:
  std::shared_ptr<Room> room_;
  std::string name_;
};

// A member that does not read would keep every line sent to it: one this far behind is
// dropped instead (connection_closed, and "left" for the others, follow from the loop).
constexpr std::size_t kMaxBacklog = 64 * 1024;

void Room::broadcast(const std::string& line) {
  for (Member* member : members) {
    if (member->transport().buffer_size() > kMaxBacklog)
      member->transport().abort_connection();
    else
      member->send_text(line);
  }
}

}  // namespace

int example_main(int argc, char** argv) {
  int port = 8080;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = torsion::examples::port_arg(argv[++i]);
    } else {
      throw torsion::examples::UsageError(std::string("usage: ") + argv[0] + " [--port N]");
    }
  }
  torsion::Reactor reactor;
  auto room = std::make_shared<Room>();
  torsion::web::Router router;
  router.get("/", [](torsion::web::Request&, torsion::web::Response& response) {
    response.set_header("Content-Type", "text/html; charset=utf-8");
    response.end(page);
  });
  router.get("/chat", torsion::web::websocket(reactor, [room](torsion::web::Request&) {
    return std::make_unique<Member>(room);
  }));
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto listening = torsion::listen_tcp(reactor, port, site, options);
  std::printf("listening on %s\n", listening->get_host().to_string().c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

int main(int argc, char** argv) { return torsion::examples::run_main(argc, argv, example_main); }
