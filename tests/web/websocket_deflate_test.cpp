// permessage-deflate (RFC 7692): the negotiation on both sides, compressed messages on a
// StringTransport (RFC 7692's own examples, fragments, zip bombs, corrupt data), then
// torsion against itself, python3-websockets (which negotiates it by default) both ways,
// and autobahn's client.

#include <doctest/doctest.h>

#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/peers.hpp"
#include "tests/web/websocket_recorder.hpp"
#include "tests/web/ws_server_support.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/detail/ws_deflate.hpp"
#include "web/detail/ws_setup.hpp"
#include "web/router.hpp"
#include "web/websocket_client.hpp"
#include "web/websocket_server.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::web::test::Child;
using torsion::web::test::python;
using torsion::web::test::python_has;
using torsion::web::test::PythonServer;
using torsion::web::test::run_child;
using torsion::web::test::Echo;
using torsion::web::test::ws_frame;
using torsion::web::test::WsServer;
using Events = std::vector<std::string>;
namespace wd = torsion::web::detail;

namespace {

Headers extensions(const std::string& value) {
  Headers h;
  h.add("Sec-WebSocket-Extensions", value);
  return h;
}

// The server's answer to `offer` ("-" when it declines).
std::string accept(const std::string& offer, const WsDeflateOptions& options = {},
                   wd::WsDeflateAgreement* agreed = nullptr) {
  wd::WsDeflateAgreement a;
  const auto answer = wd::ws_deflate_accept(extensions(offer), options, a);
  if (agreed) *agreed = a;
  return answer.value_or("-");
}

std::string inflate(std::string_view compressed) {
  wd::WsInflater inflater(false);
  std::string out;
  REQUIRE(inflater.feed(compressed, out, 1u << 30) == wd::WsInflater::Result::ok);
  REQUIRE(inflater.finish(out, 1u << 30) == wd::WsInflater::Result::ok);
  return out;
}

// A server-side Echo on a StringTransport with permessage-deflate agreed as `agreed`.
WsServer<> deflating(wd::WsDeflateAgreement agreed = {}, WebSocketOptions options = {}) {
  return WsServer<>(options, agreed);
}

// RFC 7692 7.2.3.1 and 7.2.3.2: "Hello" compressed, then again with the context taken over.
const std::string kHello("\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
const std::string kHelloAgain("\xf2\x00\x11\x00\x00", 5);

}  // namespace

TEST_CASE("websocket_deflate: the server accepts the first offer it can honour") {
  CHECK(accept("permessage-deflate") == "permessage-deflate");
  CHECK(accept("permessage-deflate; client_max_window_bits") == "permessage-deflate");
  wd::WsDeflateAgreement a;
  CHECK(accept("permessage-deflate; server_max_window_bits=10", {}, &a) ==
        "permessage-deflate; server_max_window_bits=10");
  CHECK(a.compress_bits == 10);
  CHECK(accept("permessage-deflate; server_max_window_bits=\"14\"", {}, &a) ==
        "permessage-deflate; server_max_window_bits=12");  // this side's 12 is smaller
  // A window of 256 bytes: zlib cannot make it, so this side sends uncompressed.
  CHECK(accept("permessage-deflate; server_max_window_bits=8", {}, &a) ==
        "permessage-deflate; server_max_window_bits=8");
  CHECK(a.compress_bits == 0);
  CHECK(accept("permessage-deflate; server_no_context_takeover; client_no_context_takeover", {}, &a) ==
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  CHECK(a.compress_reset);
  CHECK(a.decompress_reset);
  WsDeflateOptions ask;
  ask.peer_window_bits = 10;
  ask.peer_no_context_takeover = true;
  CHECK(accept("permessage-deflate; client_max_window_bits", ask) ==
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=10");
  CHECK(accept("permessage-deflate; client_max_window_bits=9", ask) ==
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=9");
  CHECK(accept("permessage-deflate", ask) == "permessage-deflate; client_no_context_takeover");
  // Offers it cannot honour or understand are passed over for the next one.
  CHECK(accept("permessage-deflate; x=1, permessage-deflate; server_max_window_bits=9") ==
        "permessage-deflate; server_max_window_bits=9");
  for (const char* bad : {"permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=16",
                          "permessage-deflate; server_max_window_bits=010", "permessage-deflate; client_max_window_bits=7",
                          "permessage-deflate; server_no_context_takeover=1",
                          "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                          "x-webkit-deflate-frame", "permessage-deflate;;", "permessage-deflate; a=\"open", ""}) {
    CAPTURE(bad);
    CHECK(accept(bad) == "-");
  }
  WsDeflateOptions off;
  off.enabled = false;
  CHECK(accept("permessage-deflate", off) == "-");
}

TEST_CASE("websocket_deflate: the client checks the server's answer against its offer") {
  WsDeflateOptions options;
  CHECK(wd::ws_deflate_offer(options) == "permessage-deflate; client_max_window_bits");
  auto check = [](const std::string& answer, const WsDeflateOptions& o, wd::WsDeflateAgreement& a, bool& accepted) {
    return wd::ws_deflate_check(answer.empty() ? Headers{} : extensions(answer), o, a, accepted);
  };
  wd::WsDeflateAgreement a;
  bool accepted = true;
  CHECK(check("", options, a, accepted).empty());
  CHECK_FALSE(accepted);
  CHECK(check("permessage-deflate; server_no_context_takeover", options, a, accepted).empty());
  CHECK(accepted);
  CHECK(a.decompress_reset);
  CHECK(a.compress_bits == 12);
  CHECK(check("permessage-deflate; client_max_window_bits=8; client_no_context_takeover", options, a, accepted).empty());
  CHECK(a.compress_bits == 0);
  CHECK(a.compress_reset);
  for (const char* bad : {"permessage-deflate; client_max_window_bits", "permessage-deflate; foo",
                          "permessage-deflate, permessage-deflate", "x-foo", "permessage-deflate; server_max_window_bits=16"}) {
    CAPTURE(bad);
    CHECK_FALSE(check(bad, options, a, accepted).empty());
  }
  WsDeflateOptions ask;
  ask.peer_window_bits = 10;
  ask.peer_no_context_takeover = true;
  CHECK(wd::ws_deflate_offer(ask) ==
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10; server_no_context_takeover");
  CHECK_FALSE(check("permessage-deflate; server_no_context_takeover", ask, a, accepted).empty());
  CHECK_FALSE(check("permessage-deflate; server_max_window_bits=10", ask, a, accepted).empty());
  CHECK(check("permessage-deflate; server_max_window_bits=9; server_no_context_takeover", ask, a, accepted).empty());
  WsDeflateOptions off;
  off.enabled = false;
  CHECK(wd::ws_deflate_offer(off).empty());
  CHECK_FALSE(check("permessage-deflate", off, a, accepted).empty());
  CHECK_THROWS_AS(wd::check_deflate_options(WsDeflateOptions{.window_bits = 8}, "t"), std::invalid_argument);
}

TEST_CASE("websocket_deflate: RFC 7692's examples, with the context taken over, and a compressed echo") {
  auto s = deflating();
  s.transport.receive(ws_frame(WsOpcode::text, kHello, true, true, true));
  s.transport.receive(ws_frame(WsOpcode::text, kHelloAgain, true, true, true));
  // Fragmented: RSV1 on the first frame only; and an uncompressed message in between.
  s.transport.receive(ws_frame(WsOpcode::binary, "x", true) +
                      ws_frame(WsOpcode::text, kHello.substr(0, 3), false, true, true) +
                      ws_frame(WsOpcode::continuation, kHello.substr(3), true));
  const auto sent = s.sent();
  REQUIRE(sent.error == 0);
  REQUIRE(sent.events.size() == 4);
  // Every echo went compressed (RSV1: "+z"), and inflates back with one context.
  wd::WsInflater inflater(false);
  std::vector<std::string> plain;
  for (const auto& e : sent.events) {
    const std::size_t colon = e.find(':');
    CHECK(e.substr(0, colon).find("+z") != std::string::npos);
    std::string out;
    REQUIRE(inflater.feed(std::string_view(e).substr(colon + 1), out, 1000) == wd::WsInflater::Result::ok);
    REQUIRE(inflater.finish(out, 1000) == wd::WsInflater::Result::ok);
    plain.push_back(out);
  }
  CHECK(plain == Events{"Hello", "Hello", "x", "Hello"});
  CHECK_FALSE(s.transport.disconnecting());
}

TEST_CASE("websocket_deflate: without context takeover, and held to a window of 8: uncompressed") {
  wd::WsDeflateAgreement reset;
  reset.compress_reset = true;
  auto s = deflating(reset);
  s.protocol.send_text("Hello");
  s.protocol.send_text("Hello");
  auto sent = s.sent();
  // Each message stands alone: the same bytes twice, each inflating by itself.
  REQUIRE(sent.events.size() == 2);
  CHECK(sent.events[0] == sent.events[1]);
  CHECK(inflate(sent.events[1].substr(sent.events[1].find(':') + 1)) == "Hello");

  wd::WsDeflateAgreement eight;
  eight.compress_bits = 0;
  auto t = deflating(eight);
  t.protocol.send_binary("plain");
  CHECK(t.sent().events == Events{"binary:plain"});
  t.transport.receive(ws_frame(WsOpcode::text, kHello, true, true, true));  // it still inflates
  CHECK(t.sent().events == Events{"binary:plain", "text:Hello"});
}

TEST_CASE("websocket_deflate: a zip bomb, corrupt data and bad text close the connection with their code") {
  struct Case {
    std::string frames;
    std::uint16_t code;
  };
  std::string bomb;
  wd::WsDeflater(15, 9, 9, false).compress(std::string(20u << 20, '\0'), bomb);  // 20 MiB
  REQUIRE(bomb.size() < 64 * 1024);
  std::string bad_text;
  wd::WsDeflater(15, 6, 8, false).compress("ok \xff", bad_text);
  std::string cut_text;
  wd::WsDeflater(15, 6, 8, false).compress("\xe2\x82", cut_text);
  std::string just_over;
  wd::WsDeflater(15, 6, 8, false).compress(std::string(1001, 'a'), just_over);
  const std::vector<Case> cases = {
      {ws_frame(WsOpcode::binary, bomb, true, true, true), ws_close::message_too_big},
      {ws_frame(WsOpcode::binary, just_over, true, true, true), ws_close::message_too_big},
      {ws_frame(WsOpcode::binary, "\xff\xff\xff\xff", true, true, true), ws_close::invalid_payload},
      {ws_frame(WsOpcode::text, bad_text, true, true, true), ws_close::invalid_payload},
      {ws_frame(WsOpcode::text, cut_text, true, true, true), ws_close::invalid_payload},
      {ws_frame(WsOpcode::text, kHello, false, true, true) + ws_frame(WsOpcode::continuation, "", true, true, true),
       ws_close::protocol_error},  // RSV1 on a continuation
      {ws_frame(WsOpcode::ping, "", true, true, true), ws_close::protocol_error},  // on a control frame
  };
  for (const auto& c : cases) {
    CAPTURE(c.code);
    WebSocketOptions options;
    options.max_message = 1000;
    auto s = deflating({}, options);
    s.transport.receive(c.frames);
    const auto sent = s.sent();
    REQUIRE(sent.events.size() == 1);
    CHECK(sent.events[0].rfind("close:" + std::to_string(c.code) + ":", 0) == 0);
    CHECK(s.transport.disconnecting());
    s.transport.disconnect();
    CHECK(s.protocol.status.code == c.code);
  }
  // Exactly the limit passes.
  WebSocketOptions options;
  options.max_message = 1000;
  auto s = deflating({}, options);
  std::string at_limit;
  wd::WsDeflater(15, 6, 8, false).compress(std::string(1000, 'a'), at_limit);
  s.transport.receive(ws_frame(WsOpcode::binary, at_limit, true, true, true));
  REQUIRE(s.sent().events.size() == 1);
  CHECK(inflate(s.sent().events[0].substr(s.sent().events[0].find(':') + 1)) == std::string(1000, 'a'));
  // Without the extension, RSV1 stays a protocol error.
  WsServer<> plain;
  plain.transport.receive(ws_frame(WsOpcode::text, kHello, true, true, true));
  CHECK(plain.transport.disconnecting());
  plain.transport.disconnect();
  CHECK(plain.protocol.status.code == ws_close::protocol_error);
}

namespace {

// A torsion echo server on 127.0.0.1:0 at /echo, with `deflate`.
struct Site {
  Reactor reactor;
  Router router;
  std::unique_ptr<HttpFactory> site;
  std::shared_ptr<ListeningPort> port;
  std::vector<bool> compressed;  // compression() of each connection, when it opened
  std::vector<WsCloseStatus> closed;
  explicit Site(WsDeflateOptions deflate = {}) {
    reactor.set_handle_signals(false);
    struct Tracked : Echo {
      Site* site = nullptr;
      void connection_opened() override { site->compressed.push_back(compression()); }
      void connection_closed(const WsCloseStatus& s) override { site->closed.push_back(s); }
    };
    WebSocketServerOptions options;
    options.deflate = deflate;
    router.get("/echo", websocket(reactor, [this](Request&) {
      auto p = std::make_unique<Tracked>();
      p->site = this;
      return p;
    }, options));
    site = std::make_unique<HttpFactory>(reactor, router);
    port = listen_tcp(reactor, 0, *site, torsion::test::loopback());
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port->port()) + "/echo"; }
};

Task<std::string> talk(Reactor& reactor, std::string url, WebSocketClientOptions options) {
  auto ws = co_await connect_websocket(reactor, url, options);
  std::string out = ws->compression() ? "z" : "-";
  const std::string big(300000, 'q');
  ws->send_text("caf\xc3\xa9");
  out += "|" + (co_await ws->receive()).data;
  ws->send_binary(big);
  const Message m = co_await ws->receive();
  out += "|" + std::string(m.data == big ? "big" : "bad");
  ws->close(1000, "done");
  try {
    co_await ws->receive();
  } catch (const WebSocketClosedError& e) {
    out += "|" + std::to_string(e.status().code) + (e.status().clean ? " clean" : "");
  }
  co_return out;
}

std::string run_talk(Reactor& reactor, const std::string& url, const WebSocketClientOptions& options) {
  auto task = talk(reactor, url, options);
  std::optional<std::string> result;
  std::string error;
  task.deferred().add_callbacks([&](std::string v) { result = v; },
                                [&](std::exception_ptr e) { error = describe_error(e); });
  REQUIRE(torsion::test::wait_for(reactor, [&] { return result || !error.empty(); }, "the talk"));
  INFO(error);
  REQUIRE(result);
  return *result;
}

}  // namespace

TEST_CASE("websocket_deflate: torsion's client and server, with and without it, and held to small windows") {
  {
    Site s;
    CHECK(run_talk(s.reactor, s.url(), {}) == "z|caf\xc3\xa9|big|1000 clean");
    WebSocketClientOptions off;
    off.deflate.enabled = false;
    CHECK(run_talk(s.reactor, s.url(), off) == "-|caf\xc3\xa9|big|1000 clean");
    WebSocketClientOptions small;
    small.deflate.peer_window_bits = 9;
    small.deflate.peer_no_context_takeover = true;
    small.deflate.no_context_takeover = true;
    CHECK(run_talk(s.reactor, s.url(), small) == "z|caf\xc3\xa9|big|1000 clean");
    CHECK(s.compressed == std::vector<bool>{true, false, true});
  }
  {
    WsDeflateOptions off;
    off.enabled = false;
    Site s(off);
    CHECK(run_talk(s.reactor, s.url(), {}) == "-|caf\xc3\xa9|big|1000 clean");
  }
  {
    WsDeflateOptions ask;  // asks the client for a window of 9 and no context takeover
    ask.peer_window_bits = 9;
    ask.peer_no_context_takeover = true;
    Site s(ask);
    CHECK(run_talk(s.reactor, s.url(), {}) == "z|caf\xc3\xa9|big|1000 clean");
  }
}

TEST_CASE("websocket_deflate: python3-websockets' client negotiates it; its zip bomb gets 1009") {
  Site s;
  if (!python_has(s.reactor, "websockets")) {
    MESSAGE("skipped: python3-websockets is not installed");
    return;
  }
  const std::string script = R"(
import asyncio, sys, websockets
async def main(port):
    uri = 'ws://127.0.0.1:%d/echo' % port
    out = []
    async with websockets.connect(uri, max_size=2**22) as ws:
        out.append(','.join(type(e).__name__ for e in ws.extensions))
        await ws.send('h\u00e9llo ' * 1000); out.append(str(len(await ws.recv())))
        await ws.send([b'frag', b'ment', b'ed' * 50000]); out.append(str(len(await ws.recv())))
    async with websockets.connect(uri, max_size=2**22) as ws:
        await ws.send(b'\0' * 2000000)  # 2 MB of zeros: a few KB on the wire, over the 1 MiB limit
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            out.append(str(e.rcvd.code if e.rcvd else None))
    print('|'.join(out))
asyncio.run(main(int(sys.argv[1])))
)";
  const Child c = run_child(s.reactor, {python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "PerMessageDeflate|6000|100008|1009\n");
  REQUIRE(torsion::test::wait_for(s.reactor, [&] { return s.closed.size() == 2; }, "both ends"));
  CHECK(s.compressed == std::vector<bool>{true, true});
  CHECK(s.closed[1].code == ws_close::message_too_big);
}

TEST_CASE("websocket_deflate: torsion's client against python3-websockets' server, with and without it") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  if (!python_has(reactor, "websockets")) {
    MESSAGE("skipped: python3-websockets is not installed");
    return;
  }
  const std::string script = R"(
import asyncio, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
async def main():
    on = await websockets.serve(echo, '127.0.0.1', 0, max_size=2**22)
    off = await websockets.serve(echo, '127.0.0.1', 0, max_size=2**22, compression=None)
    print(on.sockets[0].getsockname()[1], off.sockets[0].getsockname()[1], flush=True)
    await asyncio.Future()
asyncio.run(main())
)";
  PythonServer server(reactor, script);
  INFO(server.child.err);
  REQUIRE(server.ports.size() == 2);
  const int on = server.ports[0], off = server.ports[1];
  CHECK(run_talk(reactor, "ws://127.0.0.1:" + std::to_string(on) + "/", {}) == "z|caf\xc3\xa9|big|1000 clean");
  CHECK(run_talk(reactor, "ws://127.0.0.1:" + std::to_string(off) + "/", {}) == "-|caf\xc3\xa9|big|1000 clean");
  WebSocketClientOptions small;
  small.deflate.peer_window_bits = 10;
  small.deflate.no_context_takeover = true;
  CHECK(run_talk(reactor, "ws://127.0.0.1:" + std::to_string(on) + "/", small) == "z|caf\xc3\xa9|big|1000 clean");
  server.stop();
}

TEST_CASE("websocket_deflate: autobahn's client (asyncio) offers it and echoes compressed messages") {
  Site s;
  if (!python_has(s.reactor, "autobahn.asyncio.websocket")) {
    MESSAGE("skipped: python3-autobahn is not installed");
    return;
  }
  const std::string script = R"(
import asyncio, sys
from autobahn.asyncio.websocket import WebSocketClientProtocol, WebSocketClientFactory
from autobahn.websocket.compress import (PerMessageDeflateOffer, PerMessageDeflateResponse,
                                         PerMessageDeflateResponseAccept)
out = []
class Client(WebSocketClientProtocol):
    def onOpen(self):
        out.append(','.join(e.EXTENSION_NAME for e in self.websocket_extensions_in_use))
        self.sendMessage(('autobahn \u2603 ' * 500).encode('utf8'))
        self.sendMessage(b'\x07' * 70000, isBinary=True)
    def onMessage(self, payload, isBinary):
        out.append('%s:%d' % ('b' if isBinary else 't', len(payload)))
        if len(out) == 3:
            self.sendClose(1000, 'bye')
    def onClose(self, wasClean, code, reason):
        out.append('%s %s' % (wasClean, code))
        asyncio.get_event_loop().stop()
def accept(response):
    if isinstance(response, PerMessageDeflateResponse):
        return PerMessageDeflateResponseAccept(response)
port = int(sys.argv[1])
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
factory = WebSocketClientFactory('ws://127.0.0.1:%d/echo' % port)
factory.protocol = Client
factory.setProtocolOptions(perMessageCompressionOffers=[PerMessageDeflateOffer(accept_max_window_bits=True)],
                           perMessageCompressionAccept=accept)
loop.run_until_complete(loop.create_connection(factory, '127.0.0.1', port))
loop.call_later(20, loop.stop)
loop.run_forever()
print('|'.join(out))
)";
  const Child c = run_child(s.reactor, {python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "permessage-deflate|t:6500|b:70000|True 1000\n");
  REQUIRE(torsion::test::wait_for(s.reactor, [&] { return s.closed.size() == 1; }, "the close"));
  CHECK(s.compressed == std::vector<bool>{true});
  CHECK(s.closed[0].clean);
}
