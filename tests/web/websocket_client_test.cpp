// connect_websocket: ws:// against torsion's own server (coroutines, Deferreds,
// callbacks), against Debian's python3-websockets server and raw python servers that
// break the rules, and the handshake's failures.

#include "web/websocket_client.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/peers.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"
#include "web/websocket_server.hpp"

using namespace torsion;
using namespace torsion::web;

namespace {

struct Echo : WebSocketProtocol {
  void message_received(Message m) override {
    if (m.data == "close please") return close(4002, "asked");
    if (m.text())
      send_text("echo " + m.data);
    else
      send_binary(m.data);
  }
};

// A torsion WebSocket server on 127.0.0.1:0 at /echo.
struct Site {
  Reactor reactor;
  Router router;
  std::unique_ptr<HttpFactory> site;
  std::shared_ptr<ListeningPort> port;
  Site() {
    reactor.set_handle_signals(false);
    WebSocketServerOptions options;
    options.subprotocols = {"v2", "v1"};
    router.get("/echo", websocket(reactor, [](Request&) { return std::make_unique<Echo>(); }, options));
    site = std::make_unique<HttpFactory>(reactor, router);
    TcpListenOptions listen;
    listen.interface = "127.0.0.1";
    port = listen_tcp(reactor, 0, *site, listen);
  }
  std::string url(const std::string& path = "/echo") const {
    return "ws://127.0.0.1:" + std::to_string(port->port()) + path;
  }
};

// What a Deferred ended with.
template <class T>
struct Outcome {
  std::optional<T> value;
  std::exception_ptr error;
  bool done() const { return value || error; }
};

template <class T>
Outcome<T> await(Reactor& reactor, Deferred<T> d, const char* what) {
  Outcome<T> o;
  d.add_callbacks([&](T v) { o.value = std::move(v); }, [&](std::exception_ptr e) { o.error = e; });
  REQUIRE(torsion::test::wait_for(reactor, [&] { return o.done(); }, what));
  return o;
}

template <class E>
bool fails_with(std::exception_ptr error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  return false;
}

// A whole conversation, as a coroutine: connect, two messages and their echoes, then the
// server closes; what the next receive() says about it.
Task<std::string> conversation(Reactor& reactor, std::string url) {
  WebSocketClientOptions options;
  options.subprotocols = {"v1", "v2"};
  std::shared_ptr<WebSocketProtocol> ws = co_await connect_websocket(reactor, url, options);
  std::string out = ws->subprotocol();
  ws->send_text("hello");
  out += "|" + (co_await ws->receive()).data;
  ws->send_binary(std::string(100000, 'b'));
  const Message big = co_await ws->receive();
  out += "|" + std::to_string(big.data.size()) + (big.binary() ? "b" : "t");
  ws->send_text("close please");
  try {
    co_await ws->receive();
    out += "|no error";
  } catch (const WebSocketClosedError& e) {
    out += "|closed " + std::to_string(e.status().code) + " " + e.status().reason +
           (e.status().clean ? " clean" : "");
  }
  co_return out;
}

// Echo with websockets' server: text, 70000 bytes, then this side closes.
Task<std::string> echo_with(Reactor& reactor, int ws_port) {
  auto ws = co_await connect_websocket(reactor, "ws://127.0.0.1:" + std::to_string(ws_port) + "/");
  ws->send_text("caf\xc3\xa9");
  std::string out = (co_await ws->receive()).data;
  ws->send_binary(std::string(70000, '\0'));
  out += "|" + std::to_string((co_await ws->receive()).data.size());
  ws->close(1000, "done");
  try {
    co_await ws->receive();
  } catch (const WebSocketClosedError& e) {
    out += "|" + std::to_string(e.status().code) + (e.status().clean ? " clean" : "");
  }
  co_return out;
}

}  // namespace

TEST_CASE("websocket_client: a coroutine talks to torsion's server; the server's close ends receive()") {
  Site s;
  const auto o = await(s.reactor, conversation(s.reactor, s.url()).deferred(), "the conversation");
  REQUIRE(o.value);
  CHECK(*o.value == "v2|echo hello|100000b|closed 4002 asked clean");
}

TEST_CASE("websocket_client: callbacks on a subclass, and the Deferred fires with it") {
  struct Client : WebSocketProtocol {
    std::vector<std::string> got;
    std::optional<WsCloseStatus> closed;
    void connection_opened() override { send_text("from callbacks"); }
    void message_received(Message m) override {
      got.push_back(m.data);
      close(1000, "thanks");
    }
    void connection_closed(const WsCloseStatus& status) override { closed = status; }
  };
  Site s;
  auto client = std::make_shared<Client>();
  const auto o = await(s.reactor, connect_websocket(s.reactor, s.url(), client), "the connect");
  REQUIRE(o.value);
  CHECK(o.value->get() == client.get());
  REQUIRE(torsion::test::wait_for(s.reactor, [&] { return client->closed.has_value(); }, "the close"));
  CHECK(client->got == std::vector<std::string>{"echo from callbacks"});
  CHECK(client->closed->code == 1000);
  CHECK(client->closed->clean);
  // The connection is gone; the kept protocol's sends do nothing.
  client->send_text("late");
  CHECK_FALSE(client->is_open());
}

TEST_CASE("websocket_client: handshake failures: 404, refused, a silent server, bad URLs") {
  Site s;
  const auto missing = await(s.reactor, connect_websocket(s.reactor, s.url("/nope")), "the 404");
  REQUIRE(missing.error);
  try {
    std::rethrow_exception(missing.error);
  } catch (const HttpError& e) {
    CHECK(e.status() == 404);
  }

  // A port nobody listens on any more.
  TcpListenOptions listen;
  listen.interface = "127.0.0.1";
  Site closed_site;
  const int dead = closed_site.port->port();
  closed_site.port->stop_listening();
  const auto refused =
      await(s.reactor, connect_websocket(s.reactor, "ws://127.0.0.1:" + std::to_string(dead) + "/"), "refused");
  CHECK(fails_with<ConnectionError>(refused.error));

  // A server that accepts and says nothing.
  auto silent_factory = make_factory<Protocol>();
  auto silent = listen_tcp(s.reactor, 0, silent_factory, listen);
  WebSocketClientOptions quick;
  quick.handshake_timeout = 0.2;
  const auto timed_out = await(
      s.reactor, connect_websocket(s.reactor, "ws://127.0.0.1:" + std::to_string(silent->port()) + "/", quick),
      "the time-out");
  CHECK(fails_with<TimeoutError>(timed_out.error));

  CHECK_THROWS_AS(connect_websocket(s.reactor, "http://127.0.0.1/"), std::invalid_argument);
  CHECK_THROWS_AS(connect_websocket(s.reactor, "ws://127.0.0.1:99999/"), std::invalid_argument);
}

TEST_CASE("websocket_client: against python3-websockets' server, and raw servers that break the rules") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  if (!torsion::web::test::python_has(reactor, "websockets")) {
    MESSAGE("skipped: python3-websockets is not installed");
    return;
  }
  // One server process: /echo through websockets; /masked, /utf8, /close1005 and /drop
  // answer the handshake by hand and then misbehave. It prints its port, then serves
  // until it is stopped.
  const std::string script = R"(
import asyncio, base64, hashlib, os, struct, sys, websockets
GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
async def echo(ws, path):
    async for message in ws:
        await ws.send(message)
def frame(op, payload, mask=False):
    head = bytes([0x80 | op, (0x80 if mask else 0) | len(payload)])
    if mask:
        key = b'\x01\x02\x03\x04'
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload
async def raw(reader, writer):
    head = await reader.readuntil(b'\r\n\r\n')
    lines = head.decode().split('\r\n')
    path = lines[0].split(' ')[1]
    fields = dict((l.split(':', 1)[0].lower(), l.split(':', 1)[1].strip()) for l in lines[1:] if ':' in l)
    accept = base64.b64encode(hashlib.sha1(fields['sec-websocket-key'].encode() + GUID).digest())
    if path == '/badaccept':
        accept = base64.b64encode(b'x' * 20)
    writer.write(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                 b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
    if path == '/masked':
        writer.write(frame(1, b'masked', mask=True))
    elif path == '/utf8':
        writer.write(frame(1, b'ok \xff'))
    elif path == '/close1005':
        writer.write(frame(8, struct.pack('>H', 1005)))
    elif path == '/drop':
        writer.write(frame(1, b'half')[:3])
        await writer.drain()
        writer.transport.abort()
        return
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(), 10)
    except Exception:
        pass
    writer.close()
async def main():
    ws_server = await websockets.serve(echo, '127.0.0.1', 0)
    raw_server = await asyncio.start_server(raw, '127.0.0.1', 0)
    print(ws_server.sockets[0].getsockname()[1], raw_server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Future()
asyncio.run(main())
)";
  torsion::web::test::PythonServer server(reactor, script);
  INFO(server.child.err);
  REQUIRE(server.ports.size() == 2);
  const int ws_port = server.ports[0], raw_port = server.ports[1];

  auto echoed = echo_with(reactor, ws_port);
  const auto talk = await(reactor, echoed.deferred(), "the echo with websockets");
  REQUIRE(talk.value);
  CHECK(*talk.value == "caf\xc3\xa9|70000|1000 clean");

  struct Case {
    const char* path;
    std::uint16_t code;
  };
  for (const Case& c : {Case{"/masked", ws_close::protocol_error}, Case{"/utf8", ws_close::invalid_payload},
                        Case{"/close1005", ws_close::protocol_error}, Case{"/drop", ws_close::abnormal}}) {
    CAPTURE(c.path);
    auto ws = std::make_shared<WebSocketProtocol>();
    const auto o = await(reactor, connect_websocket(reactor, "ws://127.0.0.1:" + std::to_string(raw_port) + c.path, ws),
                         "the raw server's handshake");
    REQUIRE(o.value);
    const auto next = await(reactor, ws->receive(), "the failure");
    REQUIRE(next.error);
    try {
      std::rethrow_exception(next.error);
    } catch (const WebSocketClosedError& e) {
      CHECK(e.status().code == c.code);
      CHECK_FALSE(e.status().clean);
    }
  }
  const auto bad = await(reactor, connect_websocket(reactor, "ws://127.0.0.1:" + std::to_string(raw_port) + "/badaccept"),
                         "the bad accept");
  CHECK(fails_with<HttpError>(bad.error));

  server.stop();
}
