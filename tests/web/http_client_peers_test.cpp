// torsion's HTTP client against h11 (python3-h11) as a strict *server*: a python script
// bound to 127.0.0.1 port 0 that parses every request with h11 (which rejects any
// framing or header fault) and answers with h11, stopped by its PID. A missing python3
// or h11 skips the case with a printed reason.

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/client_support.hpp"
#include "tests/web/peers.hpp"
#include "transports/process.hpp"
#include "web/http_client.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::await_response;
using torsion::test::Drain;
using torsion::test::Fetched;
using torsion::web::test::Child;
using torsion::web::test::python;

namespace {

// The h11 server. Routes: /hello (Content-Length), /echo (the request's method, framing
// and body back), /chunked (a body of unknown length, which h11 sends chunked to an
// HTTP/1.1 client), /close (a body delimited by the close: h11 only frames one that way
// for HTTP/1.0 clients, so after h11 has parsed the request the script writes that
// response itself), /connection (the serial number of the connection, to see reuse).
// /big (8 MiB, chunked, in 64 KiB pieces: sendall blocks while the client does not read),
// /redirect (302 to /hello), /stall (2 bytes of 10, then silence until the client closes). A request h11 refuses is reported on stderr as "h11 refused"
// and answered 400.
constexpr const char* kH11Server = R"(
import h11, socket, sys, threading
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)

def serve(sock, serial):
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request, body = None, b''
            while True:
                e = conn.next_event()
                if e is h11.NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                elif isinstance(e, h11.Request):
                    request = e
                elif isinstance(e, h11.Data):
                    body += e.data
                elif isinstance(e, h11.EndOfMessage):
                    break
                elif isinstance(e, h11.ConnectionClosed):
                    return
            headers = dict((k.decode().lower(), v.decode()) for k, v in request.headers)
            if request.target == b'/close':
                sock.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close')
                return
            def reply(data, extra=()):
                sock.sendall(conn.send(h11.Response(status_code=200,
                    headers=[('Content-Length', str(len(data)))] + list(extra))))
                sock.sendall(conn.send(h11.Data(data=data)))
                sock.sendall(conn.send(h11.EndOfMessage()))
            if request.target == b'/hello':
                reply(b'hello from h11')
            elif request.target == b'/echo':
                framing = 'length=' + headers.get('content-length', '-')
                reply(request.method + b' ' + framing.encode() + b' ' + body)
            elif request.target == b'/chunked':
                sock.sendall(conn.send(h11.Response(status_code=200, headers=[])))
                for piece in (b'one ', b'two ', b'three'):
                    sock.sendall(conn.send(h11.Data(data=piece)))
                sock.sendall(conn.send(h11.EndOfMessage()))
            elif request.target == b'/connection':
                reply(str(serial).encode())
            elif request.target == b'/big':
                sock.sendall(conn.send(h11.Response(status_code=200, headers=[])))
                piece = b'h' * 65536
                for _ in range(128):
                    sock.sendall(conn.send(h11.Data(data=piece)))
                sock.sendall(conn.send(h11.EndOfMessage()))
            elif request.target == b'/stall':
                sock.sendall(conn.send(h11.Response(status_code=200, headers=[('Content-Length', '10')])))
                sock.sendall(conn.send(h11.Data(data=b'ab')))
                while sock.recv(65536):
                    pass
                return
            elif request.target == b'/redirect':
                sock.sendall(conn.send(h11.Response(status_code=302,
                    headers=[('Location', '/hello'), ('Content-Length', '0')])))
                sock.sendall(conn.send(h11.EndOfMessage()))
            else:
                sock.sendall(conn.send(h11.Response(status_code=404, headers=[('Content-Length', '0')])))
                sock.sendall(conn.send(h11.EndOfMessage()))
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as e:
        print('h11 refused:', e, file=sys.stderr, flush=True)
        try:
            sock.sendall(conn.send(h11.Response(status_code=400, headers=[('Content-Length', '0')])))
        except Exception:
            pass
    finally:
        sock.close()

serial = 0
while True:
    sock, _ = listener.accept()
    serial += 1
    threading.Thread(target=serve, args=(sock, serial), daemon=True).start()
)";

// The h11 server as a child process of its own reactor, killed when the test ends,
// however it ends. `running` is false (and `why` says why) if python3 or h11 is missing.
struct H11Server {
  Reactor reactor;
  Child child;
  std::shared_ptr<ProcessTransport> process;
  int port = 0;
  bool running = false;
  std::string why;
  H11Server() {
    reactor.set_handle_signals(false);
    running = start();
  }
  ~H11Server() {
    if (process && !process->exit_status()) process->signal_process(SIGKILL);
  }
  bool start() {
    if (!std::filesystem::exists(python()) && !torsion::web::test::have("python3")) {
      why = "python3 is not installed";
      return false;
    }
    Child probe;
    spawn_process(reactor, probe, {python(), "-c", "import h11"});
    REQUIRE(torsion::test::wait_for(reactor, [&] { return probe.status.has_value(); }, "python3 -c 'import h11'"));
    if (!probe.status->success()) {
      why = "python3-h11 is not installed: " + probe.err;
      return false;
    }
    process = spawn_process(reactor, child, {python(), "-c", kH11Server});
    REQUIRE(torsion::test::wait_for(reactor, [&] {
      return child.out.find('\n') != std::string::npos || child.status.has_value();
    }, "the h11 server's port"));
    INFO(child.err);
    REQUIRE(!child.status);
    port = std::stoi(child.out);
    return true;
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
  // Stops the server by its PID and waits for its end.
  void stop() {
    process->signal_process(SIGTERM);
    REQUIRE(torsion::test::wait_for(reactor, [&] { return child.status.has_value(); }, "the h11 server's end"));
  }
};

Fetched fetch(Reactor& reactor, Deferred<ClientResponse> d) { return await_response(reactor, std::move(d), "h11's response"); }

}  // namespace

TEST_CASE("http_client_peers: h11 as a strict server: GET, POST, chunked, close-delimited, pool reuse") {
  H11Server h11;
  if (!h11.running) {
    MESSAGE("skipped: " << h11.why);
    return;
  }
  Reactor& reactor = h11.reactor;

  Fetched o = fetch(reactor, http_request(reactor, "GET", h11.url("/hello")));
  REQUIRE(o.response);
  CHECK(o.response->status == 200);
  CHECK(o.response->body == "hello from h11");
  CHECK(o.response->headers.get("content-length") == "14");

  o = fetch(reactor, http_request(reactor, "POST", h11.url("/echo"), {}, "a body for h11"));
  REQUIRE(o.response);
  CHECK(o.response->body == "POST length=14 a body for h11");
  o = fetch(reactor, http_request(reactor, "POST", h11.url("/echo")));  // empty: Content-Length: 0
  REQUIRE(o.response);
  CHECK(o.response->body == "POST length=0 ");

  o = fetch(reactor, http_request(reactor, "GET", h11.url("/chunked")));
  REQUIRE(o.response);
  CHECK(o.response->headers.get("transfer-encoding") == "chunked");
  CHECK(o.response->body == "one two three");

  o = fetch(reactor, http_request(reactor, "GET", h11.url("/close")));
  REQUIRE(o.response);
  CHECK(!o.response->headers.has("content-length"));
  CHECK(o.response->body == "until the close");

  {  // The pool keeps one connection for every request; h11 numbers its connections.
    HttpPool pool(reactor);
    const Fetched first = fetch(reactor, pool.request("GET", h11.url("/connection")));
    REQUIRE(first.response);
    CHECK(fetch(reactor, pool.request("POST", h11.url("/echo"), {}, "kept")).response->body == "POST length=4 kept");
    CHECK(fetch(reactor, pool.request("GET", h11.url("/chunked"))).response->body == "one two three");
    CHECK(fetch(reactor, pool.request("GET", h11.url("/connection"))).response->body == first.response->body);
    CHECK(pool.idle_count() == 1);
    // A close-delimited response ends the connection: it does not go back to the pool.
    CHECK(fetch(reactor, pool.request("GET", h11.url("/close"))).response->body == "until the close");
    CHECK(pool.idle_count() == 0);
    const Fetched next = fetch(reactor, pool.request("GET", h11.url("/connection")));
    REQUIRE(next.response);
    CHECK(next.response->body != first.response->body);
  }

  h11.stop();
  INFO(h11.child.err);
  CHECK(h11.child.err.find("h11 refused") == std::string::npos);
}

TEST_CASE("http_client_peers: h11 as a strict server: a streamed body, a redirect, a pool capped at one connection") {
  H11Server h11;
  if (!h11.running) {
    MESSAGE("skipped: " << h11.why);
    return;
  }
  Reactor& reactor = h11.reactor;
  HttpPoolOptions po;
  po.max_per_host = 1;
  HttpPool pool(reactor, po);

  HttpClientOptions streamed;
  streamed.stream_body = true;
  streamed.body_buffer = 32 * 1024;
  Fetched head = fetch(reactor, pool.request("GET", h11.url("/big"), {}, {}, streamed));
  REQUIRE(head.response);
  CHECK(head.response->headers.get("transfer-encoding") == "chunked");
  Drain drain(*head.response);
  head.response.reset();
  drain.next();
  REQUIRE(torsion::test::wait_for(reactor, [&] { return drain.ended || drain.error; }, "h11's 8 MiB"));
  CHECK_FALSE(drain.error);
  CHECK(drain.bytes == 8 * 1024 * 1024);
  CHECK(drain.largest <= 32 * 1024);
  CHECK(drain.body == std::string(drain.body.size(), 'h'));

  HttpClientOptions follow;
  follow.max_redirects = 1;
  const Fetched moved = fetch(reactor, pool.request("GET", h11.url("/redirect"), {}, {}, follow));
  REQUIRE(moved.response);
  CHECK(moved.response->body == "hello from h11");
  CHECK(moved.response->url == h11.url("/hello"));

  // Three at once through a pool capped at one connection: they take turns on it.
  std::vector<std::string> serials;
  for (int i = 0; i < 3; ++i)
    pool.request("GET", h11.url("/connection")).add_callback([&](ClientResponse r) { serials.push_back(r.body); });
  REQUIRE(torsion::test::wait_for(reactor, [&] { return serials.size() == 3; }, "three answers"));
  CHECK(serials[0] == serials[1]);
  CHECK(serials[1] == serials[2]);
  CHECK(pool.idle_count() == 1);

  // Two bytes, then silence: the idle time-out (real time, short) ends the wait.
  HttpClientOptions impatient;
  impatient.idle_timeout = 0.3;
  const Fetched stalled = fetch(reactor, http_request(reactor, "GET", h11.url("/stall"), {}, {}, impatient));
  REQUIRE(stalled.error);
  CHECK(error_is<TimeoutError>(stalled.error));

  h11.stop();
  INFO(h11.child.err);
  CHECK(h11.child.err.find("h11 refused") == std::string::npos);
}
