// The server against real clients: curl, python3's http.client and h11 (a strict
// client), each started as a child process on 127.0.0.1 and driven by the reactor.
// A missing tool skips its case with a printed reason.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/peers.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::web::test::Child;
using torsion::web::test::have;
using torsion::web::test::python;

namespace {

// A server on 127.0.0.1:0 with /hello, /echo (the body back) and /stream (chunked).
struct Server {
  Reactor reactor;
  Router router;
  std::unique_ptr<HttpFactory> site;
  std::shared_ptr<ListeningPort> port;
  Server() {
    reactor.set_handle_signals(false);
    router.get("/hello", [](Request&, Response& res) { res.end("hello world"); });
    router.post("/echo", [](Request& req, Response& res) { res.end("got " + req.body()); });
    router.get("/stream", [](Request&, Response& res) {
      res.write("part one, ");
      res.write("part two");
      res.end();
    });
    site = std::make_unique<HttpFactory>(reactor, router);
    TcpListenOptions options;
    options.interface = "127.0.0.1";
    port = listen_tcp(reactor, 0, *site, options);
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port->port()) + std::string(path);
  }
  // Runs argv to its end while the reactor serves; returns its stdout and stderr.
  Child run(const std::vector<std::string>& argv) {
    Child child;
    spawn_process(reactor, child, argv);
    REQUIRE(torsion::test::wait_for(reactor, [&] { return child.status.has_value(); }, argv[0].c_str()));
    return child;
  }
};

std::size_t count(const std::string& s, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("http_peers: curl: GET, POST and a chunked response over one reused connection") {
  if (!have("curl")) {
    MESSAGE("skipped: curl is not installed");
    return;
  }
  Server s;
  const Child c = s.run({"curl", "-sv", s.url("/hello"), "--next", "--data-binary", "payload",
                         s.url("/echo"), "--next", s.url("/stream")});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "hello worldgot payloadpart one, part two");
  CHECK(count(c.err, "Re-using existing connection") == 2);
  CHECK(c.err.find("< Transfer-Encoding: chunked") != std::string::npos);
}

TEST_CASE("http_peers: curl: chunked upload with Expect: 100-continue") {
  if (!have("curl")) {
    MESSAGE("skipped: curl is not installed");
    return;
  }
  Server s;
  const auto file = std::filesystem::temp_directory_path() / ("torsion_http_upload_" + std::to_string(::getpid()));
  std::ofstream(file) << std::string(100000, 'u');
  const Child c = s.run({"curl", "-sv", "-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                         "--data-binary", "@" + file.string(), s.url("/echo")});
  std::filesystem::remove(file);
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.err.find("< HTTP/1.1 100 Continue") != std::string::npos);
  CHECK(c.out == "got " + std::string(100000, 'u'));
}

TEST_CASE("http_peers: python3 http.client keeps one connection for several requests") {
  if (!have("python3")) {
    MESSAGE("skipped: python3 is not installed");
    return;
  }
  Server s;
  const std::string script = R"(
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
out = []
for method, path, body in [('GET', '/hello', None), ('POST', '/echo', b'abc'),
                           ('GET', '/stream', None), ('HEAD', '/hello', None), ('GET', '/nope', None)]:
    c.request(method, path, body=body)
    r = c.getresponse()
    out.append('%d %s' % (r.status, r.read().decode()))
    assert r.getheader('Server') == 'torsion' and r.getheader('Date')
print('|'.join(out))
sock = c.sock
c.request('GET', '/hello')
c.getresponse().read()
assert c.sock is sock, 'the connection was not reused'
)";
  const Child c = s.run({python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "200 hello world|200 got abc|200 part one, part two|200 |404 not found\n\n");
}

TEST_CASE("http_peers: h11 as a strict client accepts every response, and the 400 for bad input") {
  if (!have("python3")) {
    MESSAGE("skipped: python3 is not installed");
    return;
  }
  Server s;
  if (!s.run({python(), "-c", "import h11"}).status->success()) {
    MESSAGE("skipped: python3-h11 is not installed");
    return;
  }
  const std::string script = R"(
import h11, socket, sys
port = int(sys.argv[1])
sock = socket.create_connection(('127.0.0.1', port), timeout=10)
conn = h11.Connection(h11.CLIENT)
def exchange(*events):
    for e in events:
        sock.sendall(conn.send(e))
    status, body = None, b''
    while True:
        e = conn.next_event()
        if e is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(e, h11.Response):
            status = e.status_code
        elif isinstance(e, h11.Data):
            body += e.data
        elif isinstance(e, h11.EndOfMessage):
            return '%d %s' % (status, body.decode())
out = [exchange(h11.Request(method='GET', target='/hello', headers=[('Host', 'x')]), h11.EndOfMessage())]
conn.start_next_cycle()
out.append(exchange(h11.Request(method='POST', target='/echo',
                                headers=[('Host', 'x'), ('Transfer-Encoding', 'chunked')]),
                    h11.Data(data=b'chunk'), h11.Data(data=b'ed'), h11.EndOfMessage()))
conn.start_next_cycle()
out.append(exchange(h11.Request(method='GET', target='/stream', headers=[('Host', 'x')]), h11.EndOfMessage()))
# Bad input: the answer is a 400 that h11 parses, then the server closes.
raw = socket.create_connection(('127.0.0.1', port), timeout=10)
raw.sendall(b'GET / HTTP/1.1\r\nHost : x\r\n\r\n')
bad = h11.Connection(h11.CLIENT)
bad.send(h11.Request(method='GET', target='/', headers=[('Host', 'x')]))
bad.send(h11.EndOfMessage())
while True:
    e = bad.next_event()
    if e is h11.NEED_DATA:
        bad.receive_data(raw.recv(65536))
    elif isinstance(e, h11.Response):
        out.append('%d' % e.status_code)
    elif isinstance(e, h11.EndOfMessage):
        break
raw.shutdown(socket.SHUT_WR)
assert raw.recv(100) == b'', 'the server did not close after its 400'
print('|'.join(out))
)";
  const Child c = s.run({python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "200 hello world|200 got chunked|200 part one, part two|400\n");
}
