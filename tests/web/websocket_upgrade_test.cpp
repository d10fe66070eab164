// The hand-over from the HTTP server to a WebSocketProtocol (Response::switch_protocols):
// bytes and the end of input that arrive with the upgrade request, or before the new
// protocol has started, and the HTTP layer's own read pause. Deterministic on a
// StringTransport and a ManualClock, then once over a real socket with a raw client.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/websocket_recorder.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"
#include "web/websocket_server.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;
using torsion::web::test::ws_frame;

namespace {

const std::string kUpgrade =
    "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct Echo : WebSocketProtocol {
  explicit Echo(std::vector<WsCloseStatus>& closed) : closed_(closed) {}
  void message_received(Message m) override {
    if (m.text())
      send_text(m.data);
    else
      send_binary(m.data);
  }
  void connection_closed(const WsCloseStatus& status) override { closed_.push_back(status); }
  std::vector<WsCloseStatus>& closed_;
};

// An echo site whose HTTP layer keeps at most `read_ahead` bytes of early input.
struct Site {
  Site(Scheduler& scheduler, std::size_t read_ahead) {
    router.get("/echo", websocket(scheduler, [this](Request&) { return std::make_unique<Echo>(closed); }));
    HttpServerOptions options;
    options.read_ahead = read_ahead;
    factory = std::make_unique<HttpFactory>(scheduler, router, options);
  }
  Router router;
  std::vector<WsCloseStatus> closed;
  std::unique_ptr<HttpFactory> factory;
};

// What the server sent after its 101 head, as a client parses it.
torsion::web::test::WsParse frames_after_head(const std::string& sent) {
  const std::size_t end = sent.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  REQUIRE(sent.rfind("HTTP/1.1 101 ", 0) == 0);
  WsParserOptions options;
  options.role = WsRole::client;
  return torsion::web::test::ws_parse({std::string_view(sent).substr(end + 4)}, options);
}

using Events = std::vector<std::string>;

}  // namespace

TEST_CASE("websocket_upgrade: input over read_ahead that came with the request does not leave reading paused") {
  // The CI flake of "autobahn client echoes and closes cleanly": the client's frames
  // reached the HTTP layer before the WebSocketProtocol had started, more than read_ahead
  // of them, so the HTTP layer paused reading; the WebSocket then got those bytes but the
  // pause was never lifted, and the client's close frame was never read.
  ManualClock clock;
  Site site(clock, 1024);
  StringTransport transport;
  auto http = site.factory->build_protocol(transport.get_peer());
  transport.connect(*http);
  const std::string big(3000, 'b');
  transport.receive(kUpgrade + ws_frame(WsOpcode::binary, big));
  clock.advance(0);  // the upgraded protocol starts from the loop
  CHECK(frames_after_head(transport.value()).events == Events{"binary:" + big});
  CHECK_FALSE(transport.reading_paused());
  transport.receive(ws_frame(WsOpcode::close, ws_close_payload(1000, "bye")));
  CHECK(frames_after_head(transport.value()).events == Events{"binary:" + big, "close:1000:"});
  CHECK(transport.disconnecting());
  transport.disconnect();
  REQUIRE(site.closed.size() == 1);
  CHECK(site.closed[0].clean);
}

TEST_CASE("websocket_upgrade: input that arrives between the 101 and the protocol's start") {
  ManualClock clock;
  Site site(clock, 1024);
  StringTransport transport;
  auto http = site.factory->build_protocol(transport.get_peer());
  transport.connect(*http);
  transport.receive(kUpgrade);
  const std::string part(700, 'p');
  transport.receive(ws_frame(WsOpcode::text, part));  // under read_ahead
  transport.receive(ws_frame(WsOpcode::text, part));  // over it: the HTTP layer pauses
  clock.advance(0);
  CHECK(frames_after_head(transport.value()).events == Events{"text:" + part, "text:" + part});
  CHECK_FALSE(transport.reading_paused());
  transport.receive(ws_frame(WsOpcode::ping, "p"));
  CHECK(frames_after_head(transport.value()).events ==
        Events{"text:" + part, "text:" + part, "pong:p"});
}

TEST_CASE("websocket_upgrade: an end of input before the protocol starts comes after the bytes before it") {
  ManualClock clock;
  Site site(clock, 64 * 1024);
  StringTransport transport;
  auto http = site.factory->build_protocol(transport.get_peer());
  transport.connect(*http);
  transport.receive(kUpgrade + ws_frame(WsOpcode::text, "last words"));
  transport.receive_eof();
  CHECK_FALSE(transport.disconnecting());  // the WebSocket has not heard it yet
  clock.advance(0);
  CHECK(frames_after_head(transport.value()).events == Events{"text:last words"});
  CHECK(transport.disconnecting());  // then the end: no close frame, so 1006
  transport.disconnect();
  REQUIRE(site.closed.size() == 1);
  CHECK(site.closed[0].code == ws_close::abnormal);
  CHECK_FALSE(site.closed[0].clean);
}

TEST_CASE("websocket_upgrade: a raw client sending its frames with the request gets its close answered") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  Site site(reactor, 1024);
  auto port = listen_tcp(reactor, 0, *site.factory, torsion::test::loopback());

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port->port()));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
  // Request and 70,000 bytes of frames in one send: all of it reaches the HTTP layer
  // before the WebSocket starts.
  const std::string big(70000, '\xff');
  const std::string out = kUpgrade + ws_frame(WsOpcode::text, "autobahn") + ws_frame(WsOpcode::binary, big);
  REQUIRE(::send(fd, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()));

  std::string in;
  bool peer_closed = false;
  auto pump = [&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) peer_closed = true;
      return;
    }
  };
  auto echoed = [&](std::size_t count) {
    pump();
    if (in.find("\r\n\r\n") == std::string::npos) return false;
    return frames_after_head(in).events.size() >= count;
  };
  REQUIRE(torsion::test::wait_for(reactor, [&] { return echoed(2); }, "both echoes"));
  const std::string close = ws_frame(WsOpcode::close, ws_close_payload(1000, "bye"));
  REQUIRE(::send(fd, close.data(), close.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(close.size()));
  REQUIRE(torsion::test::wait_for(reactor, [&] { return echoed(3) && peer_closed; }, "the close answered"));
  CHECK(frames_after_head(in).events == Events{"text:autobahn", "binary:" + big, "close:1000:"});
  REQUIRE(torsion::test::wait_for(reactor, [&] { return site.closed.size() == 1; }, "the server's end"));
  CHECK(site.closed[0].clean);
  ::close(fd);
}
