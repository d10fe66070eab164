// An answer sent before the request's body has ended (a streaming handler that answers
// early, a check that refuses at the head): the server drops the rest of a framed body,
// bounded by HttpLimits::max_body and linger_timeout, and keeps the connection; and
// `co_await request.body()` for the whole body. Through a StringTransport on a manual
// clock at every split point, and python3's http.client over a real socket (skipped
// with a printed reason if python3 is missing).

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "tests/protocols/splitting.hpp"
#include "tests/support/loopback.hpp"
#include "tests/web/peers.hpp"
#include "tests/web/server_support.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn, Events, responses, without_date

namespace {

HandlerOptions streamed(std::size_t buffer = 64 * 1024, std::optional<std::uint64_t> max_body = {}) {
  HandlerOptions o;
  o.stream_body = true;
  o.body_buffer = buffer;
  o.max_body = max_body;
  return o;
}

// Feeds `chunks` as a socket would (nothing while reading is paused), running the loop
// between them.
void feed(Conn& c, const std::vector<std::string_view>& chunks) {
  for (auto chunk : chunks) {
    c.t.receive(chunk);
    for (int i = 0; i < 1000 && (c.t.reading_paused() || c.clock.pending_count() > 0); ++i) {
      c.clock.advance(0);
      if (!c.t.reading_paused()) c.t.receive("");  // what was held back while paused
    }
  }
}

// PUT /early answers at once without reading its streamed body (after reading one piece
// if `read_first`); GET /next answers "next"; PUT /guarded is refused by its check
// unless it has a token.
Router early_router(std::size_t buffer, bool read_first) {
  Router router;
  router.put("/early", Handler(
                           [read_first](Request& req) -> Task<Response> {
                             if (read_first) co_await req.read_some();
                             co_return Response(200, "early");
                           },
                           streamed(buffer)));
  HandlerOptions guarded;
  guarded.check = [](const Request& req) -> std::optional<Response> {
    if (!req.header("x-token")) return Response(401, "token?");
    return std::nullopt;
  };
  router.put("/guarded", Handler([](Request& req, Response& res) { res.end("in " + req.body()); }, guarded));
  router.get("/next", [](Request&, Response& res) { res.end("next"); });
  return router;
}

const std::string kEarly = "head 200 OK 1.1 keep [Server=torsion] [Content-Length=5] [Content-Type=text/plain; charset=utf-8]";
const std::string kNext = "head 200 OK 1.1 keep [Server=torsion] [Content-Length=4]";

}  // namespace

TEST_CASE("http_early_answer: an answer before the body's end drops the rest and keeps the connection, at every split point") {
  const std::string next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string length_body = "PUT /early HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
  const std::string chunked_body =
      "PUT /early HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-T: 1\r\n\r\n";
  const std::string refused = "PUT /guarded HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  const Events early{kEarly, "body early", "end"};
  const Events after{kNext, "body next", "end"};
  const Events refusal{"head 401 Unauthorized 1.1 keep [Server=torsion] [Content-Length=6] "
                       "[Content-Type=text/plain; charset=utf-8]",
                       "body token?", "end"};
  struct Case {
    std::string name, input;
    Events expected;
  };
  const std::vector<Case> cases{
      {"Content-Length", length_body + next, [&] {
         Events e = early;
         e.insert(e.end(), after.begin(), after.end());
         return e;
       }()},
      {"chunked", chunked_body + next, [&] {
         Events e = early;
         e.insert(e.end(), after.begin(), after.end());
         return e;
       }()},
      {"check", refused + next, [&] {
         Events e = refusal;
         e.insert(e.end(), after.begin(), after.end());
         return e;
       }()},
  };
  for (const Case& k : cases) {
    for (std::size_t buffer : {std::size_t{1}, std::size_t{64 * 1024}}) {
      for (bool read_first : {false, true}) {
        for (const auto& cut : torsion::test::every_cut(k.input)) {
          INFO(k.name << ", buffer " << buffer << (read_first ? ", one piece read" : "") << ", " << cut.name);
          Conn c(early_router(buffer, read_first));
          feed(c, cut.chunks);
          REQUIRE(responses(c.t.value()) == k.expected);
          REQUIRE_FALSE(c.t.disconnecting());
          REQUIRE_FALSE(c.t.write_closed());
        }
      }
    }
  }
}

TEST_CASE("http_early_answer: what is not drained closes: 100-continue not answered, too much left, a broken chunk") {
  SUBCASE("the client waits for 100 Continue: it may never send the body, so close after the answer") {
    Conn c(early_router(64 * 1024, false));
    const std::string out =
        c.send("PUT /early HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    CHECK(out.find("100 Continue") == std::string::npos);
    CHECK(responses(out) == Events{kEarly.substr(0, kEarly.find(" keep")) + " close" +
                                       kEarly.substr(kEarly.find(" keep") + 5) + " [Connection=close]",
                                   "body early", "end"});
    CHECK(c.t.write_closed());  // lingering: half-closed, what comes is dropped
  }
  SUBCASE("more than max_body left by Content-Length: Connection: close, then a lingering close") {
    HttpServerOptions o;
    o.limits.max_body = 8;
    Router router;
    router.put("/early", Handler([](Request&, Response& res) { res.end("early"); }, streamed(64 * 1024, 0)));
    router.get("/next", [](Request&, Response& res) { res.end("next"); });
    Conn c(router, o);  // answered at the head: 9 left
    const std::string out = c.send("PUT /early HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n0");
    CHECK(out.find("Connection: close\r\n") != std::string::npos);
    CHECK(c.t.write_closed());
    Conn d(router, o);  // 8 left, within the limit: kept
    const std::string kept = d.send("PUT /early HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n0");
    CHECK(kept.find("Connection: close\r\n") == std::string::npos);
    CHECK_FALSE(d.t.write_closed());
    CHECK(responses(d.send("1234567GET /next HTTP/1.1\r\nHost: h\r\n\r\n")) ==
          Events{"head 200 OK 1.1 keep [Server=torsion] [Content-Length=4]", "body next", "end"});
  }
  SUBCASE("a chunked body that goes on past max_body while drained: the server stops and closes") {
    HttpServerOptions o;
    o.limits.max_body = 8;
    Router router;
    router.put("/early", Handler([](Request&, Response& res) { res.end("early"); }, streamed(64 * 1024, 0)));
    Conn c(router, o);
    CHECK(responses(c.send("PUT /early HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")).at(0) ==
          "head 200 OK 1.1 keep [Server=torsion] [Content-Length=5]");
    c.send("5\r\n12345\r\n");
    CHECK_FALSE(c.t.write_closed());
    CHECK(c.send("5\r\n12345\r\n").empty());  // 10 > 8: no second answer
    CHECK(c.t.write_closed());
  }
  SUBCASE("a malformed chunk while drained: no second answer, a lingering close") {
    Conn c(early_router(64 * 1024, false));
    c.send("PUT /early HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(c.send("zz\r\n").empty());
    CHECK(c.t.write_closed());
  }
  SUBCASE("a body still coming at linger_timeout: a lingering close") {
    HttpServerOptions o;
    o.linger_timeout = 2;
    Conn c(early_router(64 * 1024, false), o);
    c.send("PUT /early HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01");
    c.clock.advance(1.5);
    c.send("234");
    CHECK_FALSE(c.t.write_closed());
    c.clock.advance(0.6);
    CHECK(c.t.write_closed());
    CHECK_FALSE(c.t.lost());
    c.clock.advance(2);  // then the linger itself ends
    CHECK(c.t.disconnecting());
  }
  SUBCASE("the client closes inside the drained body: the server closes") {
    Conn c(early_router(64 * 1024, false));
    c.send("PUT /early HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01");
    c.t.receive_eof();
    c.clock.advance(0);
    CHECK(c.t.disconnecting());
  }
  SUBCASE("a check refusing a body-less request keeps the connection") {
    Conn c(early_router(64 * 1024, false));
    CHECK(responses(c.send("PUT /guarded HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")).size() == 6);
    CHECK_FALSE(c.t.write_closed());
  }
}

TEST_CASE("http_early_answer: co_await request.body() gives the whole streamed body, at every split point") {
  Router router;
  router.put("/whole", Handler(
                           [](Request& req) -> Task<Response> {
                             const std::string& body = co_await req.body();
                             CHECK(&body == &req.body());  // the request's own string, now whole
                             co_return Response(200, "got " + body + " " + std::string(co_await req.read_some()) + ".");
                           },
                           streamed(3)));
  router.put("/plain", [](Request& req) -> Task<Response> {
    co_return Response(200, "got " + std::string(co_await req.body()));
  });
  const std::string input =
      "PUT /whole HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
      "PUT /whole HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
      "PUT /plain HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy";
  const Events expected{
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=16] [Content-Type=text/plain; charset=utf-8]",
      "body got 0123456789 .", "end",
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=13] [Content-Type=text/plain; charset=utf-8]",
      "body got abcdefg .", "end",
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=6] [Content-Type=text/plain; charset=utf-8]",
      "body got xy", "end"};
  for (const auto& cut : torsion::test::every_cut(input)) {
    INFO(cut.name);
    Conn c(router);
    feed(c, cut.chunks);
    REQUIRE(responses(c.t.value()) == expected);
    REQUIRE_FALSE(c.t.disconnecting());
  }

  // Expect: 100-continue is answered when the body is awaited.
  Conn e(router);
  CHECK(e.send("PUT /whole HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") ==
        "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(responses(e.send("ok")).at(1) == "body got ok .");

  // A Request built by hand: its body at once.
  Request alone;
  std::optional<std::string> got;
  [](Request& r, std::optional<std::string>& out) -> Task<void> { out = co_await r.body(); }(alone, got);
  CHECK(got == std::string());
}

TEST_CASE("http_early_answer: co_await request.body() above the limit is 413 and throws HttpError") {
  HttpServerOptions o;
  o.limits.max_body = 8;  // the limit where the handler has none
  std::vector<std::string> errors;
  auto whole = [&](Request& req) -> Task<Response> {
    try {
      co_await req.body();
    } catch (const HttpError& e) {
      errors.push_back(std::to_string(e.status()));
      throw;
    }
    co_return Response(200, "whole");
  };
  Router router;
  router.put("/none", Handler(whole, streamed(4, 0)));    // no limit of its own: the server's 8
  router.put("/own", Handler(whole, streamed(4, 20)));    // its own 20
  SUBCASE("Content-Length over the limit: 413 before 100 Continue") {
    Conn c(router, o);
    const std::string out = c.send("PUT /none HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n");
    CHECK(out.find("100 Continue") == std::string::npos);
    CHECK(out.rfind("HTTP/1.1 413 ", 0) == 0);
    CHECK(out.find("Connection: close\r\n") != std::string::npos);
    CHECK(c.t.write_closed());
    CHECK(errors == std::vector<std::string>{"413"});
  }
  SUBCASE("a chunked body growing past it: 413 once it does") {
    Conn c(router, o);
    CHECK(c.send("PUT /none HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n").empty());
    const std::string out = c.send("4\r\n6789\r\n");
    CHECK(out.rfind("HTTP/1.1 413 ", 0) == 0);
    CHECK(c.t.write_closed());
    CHECK(errors == std::vector<std::string>{"413"});
  }
  SUBCASE("the handler's own limit, not the server's") {
    Conn c(router, o);
    CHECK(responses(c.send("PUT /own HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n" + std::string(20, 'x'))).at(1) ==
          "body whole");
    Conn d(router, o);
    CHECK(d.send("PUT /own HTTP/1.1\r\nHost: h\r\nContent-Length: 21\r\n\r\n").rfind("HTTP/1.1 413 ", 0) == 0);
  }
}

TEST_CASE("http_early_answer: python3 http.client gets an early answer, sends the rest, and reuses the connection") {
  if (!have("python3")) {
    MESSAGE("skipped: python3 is not installed");
    return;
  }
  Reactor reactor;
  reactor.set_handle_signals(false);
  std::vector<std::string> peers;
  Router router;
  router.put("/early", Handler(
                           [&](Request& req, Response& res) {
                             peers.push_back(req.peer().to_string());
                             res.end("early");
                           },
                           streamed()));
  router.get("/next", [&](Request& req, Response& res) {
    peers.push_back(req.peer().to_string());
    res.end("next");
  });
  HttpFactory site(reactor, router);
  auto port = listen_tcp(reactor, 0, site, torsion::test::loopback());
  // The head and a first part of the body; the answer is read before the rest is sent.
  const std::string script = R"(
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
c.putrequest('PUT', '/early')
c.putheader('Content-Length', str(300000))
c.endheaders()
c.send(b'a' * 100000)
r = c.getresponse()
out = ['%d %s %s' % (r.status, r.getheader('Connection'), r.read().decode())]
sock = c.sock
c.sock.sendall(b'b' * 200000)
c.request('GET', '/next')
r = c.getresponse()
out.append('%d %s' % (r.status, r.read().decode()))
assert c.sock is sock, 'the connection was not reused'
print('|'.join(out))
)";
  const Child c = run_child(reactor, {python(), "-c", script, std::to_string(port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == "200 None early|200 next\n");
  REQUIRE(peers.size() == 2);
  CHECK(peers[0] == peers[1]);  // one connection
}
