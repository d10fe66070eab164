// torsion's WebSocket server against real clients: Debian's python3-websockets and
// python3-autobahn, and raw sockets in python that break each framing rule. Every
// protocol error must end with the right close code, and the server keeps serving.
// A missing tool skips its case with a printed reason.

#include "web/websocket_server.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/peers.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::web::test::Child;
using torsion::web::test::python;

namespace {

// Echoes messages; every connection's close status lands in `closed`.
struct Echo : WebSocketProtocol {
  explicit Echo(std::vector<WsCloseStatus>& closed, WebSocketOptions options)
      : WebSocketProtocol(options), closed_(closed) {}
  void message_received(Message m) override {
    if (m.text())
      send_text(m.data);
    else
      send_binary(m.data);
  }
  void connection_closed(const WsCloseStatus& status) override { closed_.push_back(status); }
  std::vector<WsCloseStatus>& closed_;
};

struct Server {
  Reactor reactor;
  Router router;
  std::vector<WsCloseStatus> closed;
  std::unique_ptr<HttpFactory> site;
  std::shared_ptr<ListeningPort> port;
  Server() {
    reactor.set_handle_signals(false);
    WebSocketServerOptions options;
    options.subprotocols = {"echo", "chat"};
    options.check_origin = [](const Request& request) {
      return request.header("Origin").value_or("http://good") != "http://evil";
    };
    router.get("/echo", websocket(reactor, [this](Request&) {
      WebSocketOptions limits;
      limits.max_message = 1024 * 1024;
      return std::make_unique<Echo>(closed, limits);
    }, options));
    site = std::make_unique<HttpFactory>(reactor, router);
    TcpListenOptions listen;
    listen.interface = "127.0.0.1";
    port = listen_tcp(reactor, 0, *site, listen);
  }
  Child run(const std::vector<std::string>& argv) { return torsion::web::test::run_child(reactor, argv); }
  bool has_module(const char* module) { return torsion::web::test::python_has(reactor, module); }
};

}  // namespace

TEST_CASE("websocket_server_peers: python3-websockets client: text, binary, fragments, ping, big, close") {
  Server s;
  if (!s.has_module("websockets")) {
    MESSAGE("skipped: python3-websockets is not installed");
    return;
  }
  const std::string script = R"(
import asyncio, sys, websockets
async def main(port):
    uri = 'ws://127.0.0.1:%d/echo' % port
    async with websockets.connect(uri, subprotocols=['other', 'chat', 'echo'], max_size=2**22) as ws:
        out = [ws.subprotocol]
        await ws.send('h\u00e9llo'); out.append(await ws.recv())
        await ws.send(b'\x00\x01'); out.append(repr(await ws.recv()))
        await ws.send(['frag', 'ment\u00e9', 'd']); out.append(await ws.recv())
        big = b'x' * 300000
        await ws.send(big); r = await ws.recv(); out.append(str(len(r)) if r == big else 'bad')
        pong = await ws.ping(b'hi'); await asyncio.wait_for(pong, 10); out.append('pong')
        await ws.close(4001, 'done')
        out.append(str(ws.close_code))
    print('|'.join(out))
asyncio.run(main(int(sys.argv[1])))
)";
  const Child c = s.run({python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "echo|h\xc3\xa9llo|b'\\x00\\x01'|fragment\xc3\xa9" "d|300000|pong|4001\n");
  REQUIRE(torsion::test::wait_for(s.reactor, [&] { return s.closed.size() == 1; }, "the close"));
  CHECK(s.closed[0].code == 4001);
  CHECK(s.closed[0].reason == "done");
  CHECK(s.closed[0].clean);
}

TEST_CASE("websocket_server_peers: autobahn client (asyncio) echoes and closes cleanly") {
  Server s;
  if (!s.has_module("autobahn.asyncio.websocket")) {
    MESSAGE("skipped: python3-autobahn is not installed");
    return;
  }
  const std::string script = R"(
import asyncio, sys
from autobahn.asyncio.websocket import WebSocketClientProtocol, WebSocketClientFactory
out = []
class Client(WebSocketClientProtocol):
    def onOpen(self):
        self.sendMessage('autobahn \u2603'.encode('utf8'))
        self.sendMessage(b'\xff' * 70000, isBinary=True)
    def onMessage(self, payload, isBinary):
        out.append('%s:%d' % ('b' if isBinary else 't', len(payload)))
        if len(out) == 2:
            self.sendClose(1000, 'bye')
    def onClose(self, wasClean, code, reason):
        out.append('%s %s' % (wasClean, code))
        asyncio.get_event_loop().stop()
port = int(sys.argv[1])
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)  # before the factory, which keeps the loop it finds
factory = WebSocketClientFactory('ws://127.0.0.1:%d/echo' % port)
factory.protocol = Client
loop.run_until_complete(loop.create_connection(factory, '127.0.0.1', port))
loop.call_later(20, loop.stop)
loop.run_forever()
print('|'.join(out))
)";
  const Child c = s.run({python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "t:12|b:70000|True 1000\n");
  REQUIRE(torsion::test::wait_for(s.reactor, [&] { return s.closed.size() == 1; }, "the close"));
  CHECK(s.closed[0].code == 1000);
  CHECK(s.closed[0].clean);
}

TEST_CASE("websocket_server_peers: every framing error gets its close code; handshake errors their status") {
  Server s;
  // Each case: a raw client does the handshake, sends bad bytes, and reads what comes
  // back up to the server's close: the close frame's code, or the HTTP status.
  const std::string script = R"(
import base64, os, socket, struct, sys
port = int(sys.argv[1])
def frame(op, payload, fin=True, mask=True, rsv=0, length=None):
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | op])
    m = 0x80 if mask else 0
    if n <= 125: head += bytes([m | n])
    elif n <= 0xffff: head += bytes([m | 126]) + struct.pack('>H', n)
    else: head += bytes([m | 127]) + struct.pack('>Q', n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload
def connect(extra=b'', version=b'13', key=None):
    sock = socket.create_connection(('127.0.0.1', port), timeout=10)
    key = key if key is not None else base64.b64encode(os.urandom(16))
    sock.sendall(b'GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                 b'Sec-WebSocket-Key: ' + key + b'\r\nSec-WebSocket-Version: ' + version + b'\r\n' + extra + b'\r\n')
    head = b''
    while b'\r\n\r\n' not in head:
        data = sock.recv(1)
        if not data: break
        head += data
    return sock, head.split(b' ')[1].decode()
def close_code(payload):
    sock, status = connect()
    assert status == '101', status
    try:
        sock.sendall(payload)
    except OSError:
        pass
    data = b''
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk: break
        data += chunk
    # The server's frames: skip echoes, find the close.
    while data:
        op, n = data[0] & 0x0f, data[1] & 0x7f
        at = 2
        if n == 126: n, at = struct.unpack('>H', data[2:4])[0], 4
        elif n == 127: n, at = struct.unpack('>Q', data[2:10])[0], 10
        body, data = data[at:at + n], data[at + n:]
        if op == 8:
            return str(struct.unpack('>H', body[:2])[0]) if body else 'none'
    return 'no close'
out = []
out.append(close_code(frame(1, b'unmasked', mask=False)))
out.append(close_code(frame(1, b'ok \xff')))
out.append(close_code(frame(1, b'caf\xc3', fin=False) + frame(0, b'(')))
out.append(close_code(frame(2, b'', length=2 * 1024 * 1024)))
out.append(close_code(frame(8, struct.pack('>H', 1005))))
out.append(close_code(frame(8, struct.pack('>H', 2999))))
out.append(close_code(frame(8, b'\x03')))
out.append(close_code(frame(3, b'')))
out.append(close_code(frame(1, b'x', rsv=0x40)))
out.append(close_code(frame(9, b'', fin=False)))
out.append(close_code(frame(9, b'p' * 126)))
out.append(close_code(frame(0, b'x')))
out.append(close_code(frame(1, b'a', fin=False) + frame(2, b'b')))
out.append(close_code(frame(8, struct.pack('>H', 1000) + b'\xc3')))
out.append(close_code(frame(8, struct.pack('>H', 1000) + b'bye')))
print(' '.join(out))
# Handshakes: wrong version, bad key, refused origin, plain GET.
print(connect(version=b'8')[1], connect(key=b'short')[1],
      connect(extra=b'Origin: http://evil\r\n')[1])
plain = socket.create_connection(('127.0.0.1', port), timeout=10)
plain.sendall(b'GET /echo HTTP/1.1\r\nHost: x\r\n\r\n')
print(plain.recv(12).decode())
# An abrupt end in the middle of a frame.
sock, status = connect()
sock.sendall(frame(2, b'x' * 1000)[:500])
sock.close()
print('abrupt', status)
)";
  const Child c = s.run({python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out ==
        "1002 1007 1007 1009 1002 1002 1002 1002 1002 1002 1002 1002 1002 1007 1000\n"
        "426 400 403\n"
        "HTTP/1.1 426\n"
        "abrupt 101\n");
  REQUIRE(torsion::test::wait_for(s.reactor, [&] { return s.closed.size() == 16; }, "every close"));
  CHECK(s.closed.back().code == ws_close::abnormal);
  CHECK_FALSE(s.closed.back().clean);
}
