// Streamed request bodies (HandlerOptions::stream_body, Request::read_some) and the
// check hook that refuses a request before 100 Continue: through a StringTransport on a
// manual clock at every split point, and with curl uploading a large file over a real
// socket (skipped with a printed reason if curl is missing).

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/protocols/splitting.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/http_recorder.hpp"
#include "tests/web/server_support.hpp"
#include "tests/web/peers.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "framework/deferred.hpp"
#include "framework/stream.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn, Events, responses, without_date

namespace {

using Check = std::function<std::optional<Response>(const Request&)>;

// HandlerOptions with the fields named here set (GCC 12 warns on designated
// initializers that leave fields out).
HandlerOptions options(bool stream, std::size_t buffer = 64 * 1024, std::optional<std::uint64_t> max_body = {},
                       Check check = {}) {
  HandlerOptions o;
  o.stream_body = stream;
  o.body_buffer = buffer;
  o.max_body = max_body;
  o.check = std::move(check);
  return o;
}

// A coroutine handler that reads the body piece by piece and answers
// "TARGET <pieces> BODY".
Handler reader(std::size_t buffer = 64 * 1024) {
  return Handler(
      [](Request& req) -> Task<Response> {
        std::string all;
        int pieces = 0;
        for (;;) {
          std::string piece = co_await req.read_some();
          if (piece.empty()) break;
          all += piece;
          ++pieces;
        }
        co_return Response(200, req.target() + " " + all);
      },
      options(true, buffer));
}

// A callback handler that keeps the request and response for the test to drive.
struct Held {
  std::optional<Request*> request;
  std::optional<Response> response;
  Handler handler(HandlerOptions o) {
    o.stream_body = true;
    return Handler([this](Request& req, Response& res) {
      request = &req;
      response = res;
    }, std::move(o));
  }
  // read_some's outcome, if it fired.
  struct Read {
    std::optional<std::string> data;
    std::exception_ptr error;
  };
  std::shared_ptr<Read> read() {
    auto r = std::make_shared<Read>();
    (*request)->read_some().add_callbacks([r](std::string d) { r->data = std::move(d); },
                                          [r](std::exception_ptr e) { r->error = e; });
    return r;
  }
};

}  // namespace

TEST_CASE("http_body_stream: a coroutine reads streamed bodies at every split point; keep-alive goes on") {
  const std::string input =
      "POST /len HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
      "POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      "GET /none HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const Events expected{
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=15] [Content-Type=text/plain; charset=utf-8]",
      "body /len 0123456789", "end",
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=14] [Content-Type=text/plain; charset=utf-8]",
      "body /chunked abcde", "end",
      "head 200 OK 1.1 close [Server=torsion] [Content-Length=6] [Content-Type=text/plain; charset=utf-8] "
      "[Connection=close]",
      "body /none ", "end"};
  for (std::size_t buffer : {std::size_t{1}, std::size_t{4}, std::size_t{64 * 1024}}) {
    for (const auto& cut : torsion::test::every_cut(input)) {
      INFO("buffer " << buffer << ", input cut: " << cut.name);
      Conn c(reader(buffer));
      for (auto chunk : cut.chunks) {
        c.t.receive(chunk);
        for (int i = 0; i < 1000 && (c.t.reading_paused() || c.clock.pending_count() > 0); ++i) {
          c.clock.advance(0);
          if (!c.t.reading_paused()) c.t.receive("");  // what was held back while paused
        }
      }
      REQUIRE(responses(c.t.value()) == expected);
      REQUIRE(c.t.disconnecting());
    }
  }
}

TEST_CASE("http_body_stream: reading from the client pauses while the handler has not read") {
  Held h;
  Conn c(h.handler(options(true, 8)));
  c.send("PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n");
  REQUIRE(h.request);
  CHECK_FALSE(c.t.reading_paused());
  c.t.receive(std::string(20, 'a'));
  CHECK(c.t.reading_paused());  // 8 in the handler's buffer, 12 waiting unparsed
  c.t.receive(std::string(20, 'b'));
  CHECK(c.t.held_back() == 20);  // the transport holds the rest back: nothing grows
  auto r1 = h.read();
  REQUIRE(r1->data);
  CHECK(*r1->data == "aaaaaaaa");
  c.clock.advance(0);  // the next 8 go to the buffer; still full
  CHECK(c.t.reading_paused());
  std::string got = *r1->data;
  for (int i = 0; i < 10 && got.size() < 40; ++i) {
    auto r = h.read();
    if (!r->data) {  // waiting: let the server read on
      c.clock.advance(0);
      c.t.receive("");
      c.clock.advance(0);
    }
    REQUIRE(r->data);
    CHECK(r->data->size() <= 8);
    got += *r->data;
    c.clock.advance(0);
    if (!c.t.reading_paused()) c.t.receive("");
  }
  CHECK(got == std::string(20, 'a') + std::string(20, 'b'));
  auto end = h.read();
  REQUIRE(end->data);
  CHECK(end->data->empty());
  h.response->end("stored");
  CHECK(responses(c.t.take()).at(1) == "body stored");
  CHECK_FALSE(c.t.disconnecting());  // the whole body was read: keep-alive
  auto after = h.read();  // after the end, the end again
  REQUIRE(after->data);
  CHECK(after->data->empty());
}

TEST_CASE("http_body_stream: 100 Continue waits for the first read; an answer without reading closes") {
  Held h;
  Conn c(h.handler(options(true)));
  CHECK(c.send("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").empty());
  auto r = h.read();
  CHECK(c.t.take() == "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("abc");
  REQUIRE(r->data);
  CHECK(*r->data == "abc");

  // The handler refuses without reading: no 100, the answer says close, and the server
  // drains (lingers) instead of reading the body.
  Held refuser;
  Conn d(refuser.handler(options(true)));
  d.send("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n");
  refuser.response->end(Response(403, "no\n"));
  const std::string out = without_date(d.t.take());
  CHECK(out.find("100 Continue") == std::string::npos);
  CHECK(out.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
  CHECK(out.find("Connection: close\r\n") != std::string::npos);
  CHECK(d.t.write_closed());
  auto late = refuser.read();  // the body will never come
  CHECK(late->error);
}

TEST_CASE("http_body_stream: check refuses a head before 100 Continue, for streaming and whole-body handlers") {
  auto check = [](const Request& req) -> std::optional<Response> {
    if (!req.header("authorization")) return Response(401, "who are you?\n");
    if (req.header("content-length") == "999") return Response(417, "not that\n");
    return std::nullopt;
  };
  int ran = 0;
  Conn c(Handler([&](Request& req, Response& res) {
    ++ran;
    res.end("ok " + req.body());
  }, options(false, 64 * 1024, {}, check)));
  const std::string refused = c.send("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  CHECK(refused.rfind("HTTP/1.1 401 Unauthorized\r\n", 0) == 0);
  CHECK(refused.find("Connection: close") != std::string::npos);
  CHECK(refused.find("who are you?") != std::string::npos);
  CHECK(c.t.write_closed());
  CHECK(ran == 0);

  Conn d(Handler([&](Request& req, Response& res) { res.end("ok " + req.body()); }, options(false, 64 * 1024, {}, check)));
  CHECK(d.send("PUT /u HTTP/1.1\r\nHost: h\r\nAuthorization: x\r\nExpect: 100-continue\r\nContent-Length: 999\r\n\r\n")
            .rfind("HTTP/1.1 417 Expectation Failed\r\n", 0) == 0);
  Conn e(Handler([&](Request& req, Response& res) { res.end("ok " + req.body()); }, options(false, 64 * 1024, {}, check)));
  CHECK(e.send("PUT /u HTTP/1.1\r\nHost: h\r\nAuthorization: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") ==
        "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(responses(e.send("hi")).at(1) == "body ok hi");

  // Through a Router: only the route with the check checks.
  Router router;
  router.put("/guarded", Handler([](Request&, Response& res) { res.end("in"); }, options(false, 64 * 1024, {}, check)));
  router.put("/open", [](Request&, Response& res) { res.end("open"); });
  Conn f(router);
  CHECK(f.send("PUT /guarded HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 401 ", 0) == 0);
  Conn g(router);
  CHECK(responses(g.send("PUT /open HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")).at(1) == "body open");

  // A check that throws: 500.
  Conn k(Handler([](Request&, Response& res) { res.end(); },
                 options(false, 64 * 1024, {}, [](const Request&) -> std::optional<Response> { throw std::runtime_error("x"); })));
  CHECK(k.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n").rfind("HTTP/1.1 500 ", 0) == 0);
}

TEST_CASE("http_body_stream: a handler's own body limit; 0 is none when streaming; over it is 413") {
  HttpServerOptions small;
  small.limits.max_body = 4;
  Router router;
  router.post("/big", Handler([](Request& req, Response& res) { res.end(std::to_string(req.body().size())); },
                              options(false, 64 * 1024, 100)));
  router.post("/stream", Handler(
      [](Request& req) -> Task<Response> {
        std::size_t n = 0;
        for (;;) {
          const std::string piece = co_await req.read_some();
          if (piece.empty()) break;
          n += piece.size();
        }
        co_return Response(200, std::to_string(n));
      },
      options(true, 16, 0)));
  Conn a(router, small);
  CHECK(responses(a.send("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n" + std::string(50, 'x'))).at(1) ==
        "body 50");
  Conn b(router, small);
  CHECK(b.send("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n").rfind("HTTP/1.1 413 ", 0) == 0);
  Conn d(router, small);  // the server's own limit elsewhere
  CHECK(d.send("POST /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n").rfind("HTTP/1.1 413 ", 0) == 0);

  // No limit (the server's is 4 bytes): 1 MiB in chunks goes through a 16-byte buffer.
  Conn s(router, small);
  s.send("POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "1000\r\n" + std::string(0x1000, 'z') + "\r\n";
  std::size_t sent = 0;
  for (int i = 0; i < 256; ++i) {
    s.t.receive(chunk);
    sent += 0x1000;
    for (int k = 0; k < 100000 && (s.t.reading_paused() || s.clock.pending_count() > 0); ++k) {
      s.clock.advance(0);
      if (!s.t.reading_paused()) s.t.receive("");
    }
    REQUIRE_FALSE(s.t.reading_paused());
  }
  s.t.receive("0\r\n\r\n");
  s.clock.advance(0);
  CHECK(responses(s.t.take()).at(1) == "body " + std::to_string(sent));

  // A streamed body that breaks its limit mid-way: the read fails with the 413.
  Held h;
  Conn e(h.handler(options(true, 64 * 1024, 10)));
  e.send("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n");
  auto first = h.read();
  REQUIRE(first->data);
  auto second = h.read();
  const std::string refused = e.send("9\r\n123456789\r\n");
  REQUIRE(second->error);
  CHECK(error_is<HttpError>(second->error));
  CHECK(refused.rfind("HTTP/1.1 413 ", 0) == 0);
  CHECK(e.t.write_closed());

  CHECK_THROWS_AS(Handler([](Request&, Response&) {}, options(false, 64 * 1024, 0)), std::invalid_argument);
  CHECK_THROWS_AS(Handler([](Request&, Response&) {}, options(true, 0)),
                  std::invalid_argument);
}

TEST_CASE("http_body_stream: a lost connection fails a waiting read; back-pressure is not a slow client") {
  Held h;
  Conn c(h.handler(options(true)));
  c.send("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
  auto first = h.read();
  REQUIRE(first->data);
  auto waiting = h.read();
  CHECK_FALSE(waiting->data);
  c.t.disconnect();
  REQUIRE(waiting->error);
  CHECK(error_is<ConnectionError>(waiting->error));

  // The client sends fast, the handler reads slowly: reading is paused, and the body
  // rate check does not count that against the client.
  HttpServerOptions o;
  o.min_body_rate = 100;
  o.body_rate_window = 1;
  Held slow;
  Conn d(slow.handler(options(true, 4)), o);
  d.send("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678");
  CHECK(d.t.reading_paused());
  d.clock.advance(5);  // five windows with no body byte read: our doing
  CHECK(d.t.value().empty());
  auto a = slow.read();
  REQUIRE(a->data);
  d.clock.advance(0);
  d.t.receive("");
  auto b = slow.read();
  REQUIRE(b->data);
  CHECK(*a->data + *b->data == "12345678");
  slow.response->end("ok");
  CHECK(responses(d.t.take()).at(1) == "body ok");
}

TEST_CASE("http_body_stream: read_some on a whole body gives it once, then the end") {
  std::vector<std::string> pieces;
  Conn c([&](Request& req) -> Task<Response> {
    pieces.push_back(co_await req.read_some());
    pieces.push_back(co_await req.read_some());
    co_return Response(200, "ok");
  });
  c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(pieces == std::vector<std::string>{"abc", ""});
}

TEST_CASE("http_body_stream: curl uploads a large file with Expect: 100-continue; a refusal stops it before the body") {
  if (!torsion::web::test::have("curl")) {
    MESSAGE("skipped: curl is not installed");
    return;
  }
  Reactor reactor;
  reactor.set_handle_signals(false);
  std::size_t largest_piece = 0;
  std::size_t received = 0;
  Router router;
  router.put("/upload", Handler(
      [&](Request& req) -> Task<Response> {
        for (;;) {
          const std::string piece = co_await req.read_some();
          if (piece.empty()) break;
          largest_piece = std::max(largest_piece, piece.size());
          received += piece.size();
        }
        co_return Response(201, "stored " + std::to_string(received) + "\n");
      },
      options(true, 16 * 1024, 0, [](const Request& req) -> std::optional<Response> {
        if (req.header("x-token") != "secret") return Response(401, "token?\n");
        return std::nullopt;
      })));
  HttpServerOptions options;
  options.limits.max_body = 1024;  // the server's limit; the route has none
  HttpFactory site(reactor, router, options);
  auto port = listen_tcp(reactor, 0, site, torsion::test::loopback());
  const std::string url = "http://127.0.0.1:" + std::to_string(port->port()) + "/upload";
  const auto file = std::filesystem::temp_directory_path() / ("torsion_upload_" + std::to_string(::getpid()));
  const std::size_t size = 64 * 1024 * 1024;
  {
    std::ofstream out(file, std::ios::binary);
    const std::string block(1024 * 1024, 'q');
    for (std::size_t i = 0; i < size / block.size(); ++i) out << block;
  }
  auto run = [&](const std::vector<std::string>& argv) {
    torsion::web::test::Child child;
    spawn_process(reactor, child, argv);
    REQUIRE(torsion::test::wait_for(reactor, [&] { return child.status.has_value(); }, "curl"));
    return child;
  };
  const auto ok = run({"curl", "-sv", "-T", file.string(), "-H", "Expect: 100-continue", "-H", "X-Token: secret", url});
  const auto refused = run({"curl", "-sv", "-T", file.string(), "-H", "Expect: 100-continue", url});
  std::filesystem::remove(file);
  INFO(ok.err);
  CHECK(ok.status->success());
  CHECK(ok.err.find("< HTTP/1.1 100 Continue") != std::string::npos);
  CHECK(ok.out == "stored " + std::to_string(size) + "\n");
  CHECK(received == size);
  CHECK(largest_piece <= 16 * 1024);  // never more than the mark waits for the handler
  INFO(refused.err);
  CHECK(refused.err.find("100 Continue") == std::string::npos);
  CHECK(refused.err.find("< HTTP/1.1 401 Unauthorized") != std::string::npos);
  CHECK(refused.out == "token?\n");
  CHECK(received == size);  // nothing more reached the handler
}
