#include "web/http_server.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/protocols/splitting.hpp"
#include "tests/web/http_recorder.hpp"
#include "tests/web/server_support.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn, Events, responses, without_date

namespace {

// Answers "METHOD TARGET BODY" at once.
void echo(Request& req, Response& res) {
  res.end(req.method() + " " + req.target() + " " + req.body());
}

}  // namespace

TEST_CASE("http_server: keep-alive by default, with Server and Date fields") {
  Conn c(echo);
  const std::string out = c.t.value();
  c.t.receive("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string first = c.t.take();
  CHECK(first.find("Date: ") != std::string::npos);
  CHECK(without_date(first) == "HTTP/1.1 200 OK\r\nServer: torsion\r\nContent-Length: 7\r\n\r\nGET /a ");
  CHECK(c.send("GET /b HTTP/1.1\r\nHost: h\r\n\r\n").find("GET /b ") != std::string::npos);
  CHECK_FALSE(c.t.disconnecting());
  CHECK(out.empty());
}

TEST_CASE("http_server: pipelined requests cut at every split point get the same answers in order") {
  const std::string input =
      "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "GET /4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const Events expected{
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=7]", "body GET /1 ", "end",
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=13]", "body POST /2 hello", "end",
      "head 200 OK 1.1 keep [Server=torsion] [Content-Length=11]", "body POST /3 abc", "end",
      "head 200 OK 1.1 close [Server=torsion] [Content-Length=7] [Connection=close]",
      "body GET /4 ", "end"};
  for (const auto& cut : torsion::test::every_cut(input)) {
    INFO("input cut: " << cut.name);
    Conn c(echo);
    for (auto chunk : cut.chunks) {
      c.t.receive(chunk);
      c.clock.advance(0);
    }
    REQUIRE(responses(c.t.value()) == expected);
    REQUIRE(c.t.disconnecting());
  }
}

TEST_CASE("http_server: a slow handler holds the next answer; read-ahead is bounded") {
  std::vector<Response> waiting;
  std::vector<std::string> seen;
  HttpServerOptions o;
  o.read_ahead = 100;
  Conn c([&](Request& req, Response& res) {
    seen.push_back(req.target());
    waiting.push_back(res);
  }, o);
  c.t.receive("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(seen == Events{"/1"});
  CHECK(c.t.value().empty());
  c.t.receive(std::string(200, '\r'));  // more pipelined input than the read-ahead
  CHECK(c.t.reading_paused());
  waiting[0].end("one");
  c.clock.advance(0);
  CHECK(seen == Events{"/1", "/2"});
  CHECK(c.t.reading_paused());  // the 200 bytes after /2 are still more than the read-ahead
  waiting[1].end("two");
  c.clock.advance(0);
  CHECK_FALSE(c.t.reading_paused());
  const Events r = responses(c.t.value());
  REQUIRE(r.size() == 6);
  CHECK(r[1] == "body one");
  CHECK(r[4] == "body two");
}

TEST_CASE("http_server: HTTP/1.0 closes after the answer unless it asked for keep-alive") {
  {
    Conn c(echo);
    const std::string out = c.send("GET / HTTP/1.0\r\n\r\n");
    CHECK(out.find("Connection: close\r\n") != std::string::npos);
    CHECK(c.t.disconnecting());
  }
  {
    Conn c(echo);
    const std::string out = c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(out.find("Connection: keep-alive\r\n") != std::string::npos);
    CHECK_FALSE(c.t.disconnecting());
  }
}

TEST_CASE("http_server: Expect: 100-continue gets 100 before the final answer") {
  Conn c(echo);
  CHECK(c.send("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n") ==
        "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK(c.send("abc").find("PUT /u abc") != std::string::npos);
  // A body too large for the limit is refused without a 100.
  HttpServerOptions o;
  o.limits.max_body = 2;
  Conn d(echo, o);
  const std::string out = d.send("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  CHECK(out.rfind("HTTP/1.1 413 Content Too Large\r\n", 0) == 0);
}

TEST_CASE("http_server: HEAD gets the GET fields and no body") {
  Conn c(echo);
  const std::string out = c.send("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(out == "HTTP/1.1 200 OK\r\nServer: torsion\r\nContent-Length: 8\r\n\r\n"
               "HTTP/1.1 200 OK\r\nServer: torsion\r\nContent-Length: 7\r\n\r\nGET /y ");
}

TEST_CASE("http_server: bad requests are answered, then half-closed and drained until the linger ends") {
  const std::pair<const char*, int> cases[] = {
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
  };
  for (const auto& [input, status] : cases) {
    INFO(input);
    Conn c(echo);
    const std::string out = c.send(input);
    CHECK(out.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0) == 0);
    CHECK(out.find("Connection: close\r\n") != std::string::npos);
    CHECK(c.t.write_closed());
    CHECK_FALSE(c.t.disconnecting());
    CHECK(c.send("more junk the client still sends").empty());
    c.clock.advance(2);
    CHECK(c.t.disconnecting());
  }
  HttpServerOptions o;
  o.limits.max_start_line = 20;
  o.limits.max_fields = 1;
  Conn c(echo, o);
  CHECK(c.send("GET /" + std::string(30, 'a')).rfind("HTTP/1.1 414 URI Too Long\r\n", 0) == 0);
  Conn d(echo, o);
  CHECK(d.send("GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n").rfind("HTTP/1.1 431 ", 0) == 0);
}

TEST_CASE("http_server: header deadline (408), idle keep-alive time-out (quiet close)") {
  HttpServerOptions o;
  o.header_timeout = 5;
  o.idle_timeout = 30;
  Conn c(echo, o);
  c.send("GET / HTTP/1.1\r\n");
  c.clock.advance(4.9);
  CHECK(c.t.value().empty());
  c.clock.advance(0.2);
  CHECK(c.t.take().rfind("HTTP/1.1 408 Request Timeout\r\n", 0) == 0);

  Conn d(echo, o);
  d.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  d.clock.advance(29);
  CHECK_FALSE(d.t.disconnecting());
  d.clock.advance(1.5);
  CHECK(d.t.disconnecting());
  CHECK(d.t.value().empty());
}

TEST_CASE("http_server: a slow but steady upload passes; one below the minimum rate gets 408") {
  HttpServerOptions o;
  o.min_body_rate = 100;
  o.body_rate_window = 1;
  Conn steady(echo, o);
  steady.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n");
  std::string out;
  for (int second = 0; second < 20; ++second) {  // 150 bytes a second for 20 s
    out += steady.send(std::string(150, 'x'));
    steady.clock.advance(1);
  }
  CHECK(out.rfind("HTTP/1.1 200 OK", 0) == 0);

  Conn slow(echo, o);
  slow.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n");
  slow.send(std::string(50, 'x'));
  slow.clock.advance(1);
  CHECK(slow.t.take().rfind("HTTP/1.1 408 ", 0) == 0);
}

TEST_CASE("http_server: a handler that does not answer in time gets 503") {
  HttpServerOptions o;
  o.handler_timeout = 3;
  Response kept;
  Conn c([&](Request&, Response& res) { kept = res; }, o);
  c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  c.clock.advance(3);
  CHECK(c.t.take().rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
  CHECK(c.t.disconnecting());
  kept.end("too late");  // harmless
  CHECK(c.t.value().empty());
}

TEST_CASE("http_server: the request cap closes the connection after the last one") {
  HttpServerOptions o;
  o.max_requests = 2;
  Conn c(echo, o);
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n").find("Connection: close") == std::string::npos);
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n").find("Connection: close\r\n") != std::string::npos);
  CHECK(c.t.disconnecting());
}

TEST_CASE("http_server: Deferred and coroutine handlers") {
  Deferred<Response> later;
  Conn c([&](Request&) { return later; });
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n").empty());
  later.callback(Response(201, "made\n"));
  CHECK(c.t.take().find("HTTP/1.1 201 Created\r\n") == 0);

  Deferred<int> value;
  Conn d([&](Request& req) -> Task<Response> {
    const int n = co_await value;
    co_return Response(200, req.target() + " " + std::to_string(n));
  });
  d.send("GET /coro HTTP/1.1\r\nHost: h\r\n\r\n");
  value.callback(42);
  CHECK(responses(d.t.take()).at(1) == "body /coro 42");

  Conn e([](Request&) -> Deferred<Response> { return fail<Response>(std::runtime_error("boom")); });
  CHECK(e.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n").rfind("HTTP/1.1 500 ", 0) == 0);
}

TEST_CASE("http_server: a callback that throws gets 500 and the connection goes on") {
  Conn c([](Request& req, Response& res) {
    if (req.target() == "/boom") throw std::runtime_error("boom");
    res.end("fine");
  });
  CHECK(c.send("GET /boom HTTP/1.1\r\nHost: h\r\n\r\n").rfind("HTTP/1.1 500 ", 0) == 0);
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n").find("fine") != std::string::npos);
}

TEST_CASE("http_server: streamed bodies: chunked for HTTP/1.1, close-delimited for 1.0") {
  const auto stream = [](Request&, Response& res) {
    res.set_header("Content-Type", "text/plain");
    res.write("hello ");
    res.write("");
    res.write("world");
    res.end();
  };
  Conn c(stream);
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n") ==
        "HTTP/1.1 200 OK\r\nServer: torsion\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
  CHECK_FALSE(c.t.disconnecting());
  Conn d(stream);
  CHECK(d.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") ==
        "HTTP/1.1 200 OK\r\nServer: torsion\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        "hello world");
  CHECK(d.t.disconnecting());
}

TEST_CASE("http_server: end(body) after write() sends body as the last streamed piece") {
  Conn c([](Request&, Response& res) {
    res.write("a");
    res.end("b");
  });
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n") ==
        "HTTP/1.1 200 OK\r\nServer: torsion\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1\r\na\r\n1\r\nb\r\n0\r\n\r\n");
}

TEST_CASE("http_server: a streaming producer is paused at the high mark") {
  struct Source : Producer {
    Response res;
    int paused = 0, resumed = 0;
    void pause_producing() override { ++paused; }
    void resume_producing() override { ++resumed; }
    void stop_producing() override {}
  } source;
  Conn c([&](Request&, Response& res) {
    source.res = res;
    res.register_producer(source, true);
    res.write(std::string(100, 'x'));
  });
  c.t.set_buffering(true);
  c.t.set_write_buffer_limits(50, 10);
  c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(source.paused == 1);
  c.t.drain();
  CHECK(source.resumed == 1);
  source.res.end();
  CHECK(c.t.producer() == nullptr);
}

TEST_CASE("http_server: a response kept after the connection is gone does nothing") {
  Response kept;
  {
    Conn c([&](Request&, Response& res) { kept = res; });
    c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(kept.connected());
  }
  CHECK_FALSE(kept.connected());
  kept.write("x");
  kept.end("late");
  CHECK(kept.request().target() == "/");
}

TEST_CASE("http_server: switch_protocols hands the connection and the bytes after the request over") {
  struct Echo : Protocol {
    void data_received(std::string_view d) override { transport().write(d); }
  };
  Conn c([](Request&, Response& res) {
    res.set_status(101);
    res.set_header("Connection", "Upgrade");
    res.set_header("Upgrade", "echo");
    res.switch_protocols(std::make_unique<Echo>());
  });
  const std::string out =
      c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly");
  CHECK(out == "HTTP/1.1 101 Switching Protocols\r\nServer: torsion\r\nConnection: Upgrade\r\n"
               "Upgrade: echo\r\n\r\nearly");
  CHECK(c.send("later") == "later");
}

TEST_CASE("router: methods, parameters, 404, 405 with Allow, HEAD by GET") {
  Router router;
  router.get("/users/:id", [](Request& req, Response& res) { res.end("user " + std::string(req.param("id"))); });
  router.post("/users", [](Request& req, Response& res) { res.end("made " + req.body()); });
  router.get("/files/*path", [](Request& req, Response& res) { res.end("file " + std::string(req.param("path"))); });
  Conn c(router);
  CHECK(responses(c.send("GET /users/7 HTTP/1.1\r\nHost: h\r\n\r\n")).at(1) == "body user 7");
  CHECK(responses(c.send("POST /users HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab")).at(1) == "body made ab");
  CHECK(responses(c.send("GET /files/a/b.txt?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")).at(1) == "body file a/b.txt");
  CHECK(c.send("GET /users/7/x HTTP/1.1\r\nHost: h\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
  CHECK(c.send("GET /users/ HTTP/1.1\r\nHost: h\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
  const std::string refused = c.send("DELETE /users HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(refused.rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(refused.find("Allow: POST\r\n") != std::string::npos);
  CHECK(c.send("HEAD /users/1 HTTP/1.1\r\nHost: h\r\n\r\n").find("Content-Length: 6\r\n\r\n") != std::string::npos);
}

TEST_CASE("http_server: requests sent before a half-close are all answered, then the server closes") {
  std::vector<Response> waiting;
  Conn c([&](Request&, Response& res) { waiting.push_back(res); });
  c.t.receive("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  c.t.receive_eof();
  CHECK_FALSE(c.t.disconnecting());
  waiting.at(0).end("one");
  c.clock.advance(0);
  CHECK_FALSE(c.t.disconnecting());
  waiting.at(1).end("two");
  c.clock.advance(0);
  const Events r = responses(c.t.value());
  REQUIRE(r.size() == 6);
  CHECK(r[3].find("[Connection=close]") != std::string::npos);
  CHECK(c.t.disconnecting());
}

TEST_CASE("http_server: 204 and 304 answers carry no body even if one was set") {
  Conn c([](Request&, Response& res) { res.set_status(204); res.end("ignored"); });
  CHECK(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n") == "HTTP/1.1 204 No Content\r\nServer: torsion\r\n\r\n");
}
