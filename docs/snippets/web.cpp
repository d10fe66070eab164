// docs/web.md's snippets, with their own test case (they need torsion_web).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "framework/protocol.hpp"
#include "web/byte_range.hpp"
#include "web/http_client.hpp"

// [snippet:includes]
#include "framework/deferred.hpp"  // torsion::succeed
#include "framework/reactor.hpp"
#include "framework/task.hpp"      // torsion::Task, torsion::sleep
#include "transports/tcp.hpp"      // torsion::listen_tcp
#include "web/http_server.hpp"     // HttpFactory, Request, Response
#include "web/router.hpp"          // Router

using torsion::web::Request;  // the snippets on this page write these two names short
using torsion::web::Response;
// [end]

namespace docs {
namespace {

// Sends raw bytes and keeps everything the server answers until it closes.
class RawClient : public torsion::Protocol {
 public:
  RawClient(std::string request, std::string& reply) : request_(std::move(request)), reply_(reply) {}
  void connection_made() override { transport().write(request_); }
  void data_received(std::string_view data) override { reply_.append(data); }

 private:
  std::string request_;
  std::string& reply_;
};

class RawClientFactory : public torsion::ClientFactory {
 public:
  RawClientFactory(std::string request, std::string& reply) : request_(std::move(request)), reply_(reply) {}
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    return std::make_unique<RawClient>(request_, reply_);
  }

 private:
  std::string request_;
  std::string& reply_;
};

// [snippet:pool]
// Three requests through one HttpPool: they share one kept-alive connection.
torsion::Task<std::string> three_gets(torsion::web::HttpPool& pool, std::string base) {
  std::string bodies;
  for (const char* path : {"/hello", "/count", "/later/bob"}) {
    torsion::web::ClientResponse response = co_await pool.request("GET", base + path);
    bodies += response.body;
  }
  co_return bodies;
}
// [end]

// [snippet:download]
// A download of any size in bounded memory: the body comes in pieces as the loop asks
// for them, and the connection stops reading while body_buffer (64 KiB) bytes wait.
torsion::Task<std::size_t> download(torsion::web::HttpPool& pool, std::string url) {
  torsion::web::HttpClientOptions options;
  options.stream_body = true;  // the request's Deferred fires at the head
  options.max_redirects = 5;   // off (0) by default
  options.idle_timeout = 30;   // the longest silence between two bytes of the response
  torsion::web::ClientResponse response = co_await pool.request("GET", url, {}, {}, options);
  std::size_t size = 0;
  for (;;) {
    const std::string piece = co_await response.read_some();  // "" at the end
    if (piece.empty()) break;
    size += piece.size();  // write it to a file, hash it...
  }
  co_return size;
}
// [end]

// [snippet:upload]
// An upload: the body comes in pieces as the client sends it, at most body_buffer
// (64 KiB) waiting at a time; a request without the token is refused before its body is
// read (no 100 Continue goes out).
torsion::web::Handler upload_handler(std::size_t& stored) {
  torsion::web::HandlerOptions options;
  options.stream_body = true;  // read with request.read_some()
  options.max_body = 0;        // no limit on the size: memory stays bounded anyway
  options.check = [](const Request& request) -> std::optional<Response> {
    if (request.header("x-token") != "secret") return Response(401, "token?\n");
    return std::nullopt;  // go on to the handler
  };
  return torsion::web::Handler(
      [&stored](Request& request) -> torsion::Task<Response> {
        for (;;) {
          const std::string piece = co_await request.read_some();  // "" at the end
          if (piece.empty()) break;
          stored += piece.size();  // write it to a file, hash it...
        }
        co_return Response(201, "stored " + std::to_string(stored) + " bytes\n");
      },
      options);
}
// [end]

// [snippet:whole-body]
// A handler that looks at the head first, then takes the whole body at once: it runs
// at the head (stream_body), and `co_await request.body()` reads the rest of the body
// into request.body(), up to max_body (413 above it).
torsion::web::Handler json_handler() {
  torsion::web::HandlerOptions options;
  options.stream_body = true;  // run at the head
  options.max_body = 64 * 1024;
  return torsion::web::Handler(
      [](Request& request) -> torsion::Task<Response> {
        if (request.header("content-type") != "application/json")
          co_return Response(415, "json only\n");  // the body is dropped, the connection kept
        const std::string& body = co_await request.body();  // 100 Continue goes out here
        co_return Response(200, "got " + std::to_string(body.size()) + " bytes of json\n");
      },
      options);
}
// [end]

// [snippet:coroutine-handler]
torsion::Task<Response> slow_hello(torsion::Reactor& reactor, Request& request) {
  co_await torsion::sleep(reactor, 0.01);  // the request stays valid across co_await
  co_return Response(200, "later, " + std::string(request.param("name")) + "\n");
}
// [end]

// [snippet:ranges]
// A file: Range requests on it are answered for you (206, 416, Accept-Ranges: bytes).
// An ETag lets If-Range through too: a client resumes only the version it started with.
void serve_report(torsion::web::Router& router, std::string path) {
  router.get("/report", [path](Request&, Response& response) {
    response.set_file(path).set_header("ETag", "\"v7\"");
    response.end();
  });
}

// A body of your own: resolve_byte_range reads the Range field against its size.
Response part_of(const Request& request, const std::string& data) {
  using torsion::web::ByteRange;
  const ByteRange range =
      torsion::web::resolve_byte_range(request.header("range").value_or(""), data.size());
  const std::string size = std::to_string(data.size());
  if (range.kind == ByteRange::Kind::whole) return Response(200, data);
  if (range.kind == ByteRange::Kind::unsatisfiable) {
    Response refusal(416);
    refusal.set_header("Content-Range", "bytes */" + size);
    return refusal;
  }
  Response part(206, data.substr(range.first, range.length()));
  part.set_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                       std::to_string(range.last) + "/" + size);
  return part;
}
// [end]

}  // namespace
}  // namespace docs

TEST_CASE("web: a router in every style, pipelined requests answered in order") {
  using namespace docs;
  torsion::Reactor reactor;
  // [snippet:router]
  torsion::web::Router router;
  // A callback: answer now (or keep `response`, a handle, and answer later).
  router.get("/hello", [](Request&, Response& response) { response.end("hello world\n"); });
  // A function that returns its Response at once.
  router.get("/plain", [](Request&) { return Response(200, "plain\n"); });
  // A Deferred<Response>: the server answers when it fires.
  router.post("/echo", [](Request& request) {
    return torsion::succeed(Response(200, "you sent " + request.body() + "\n"));
  });
  // A coroutine returning Task<Response>, with a path parameter.
  router.get("/later/:name", [&reactor](Request& request) { return slow_hello(reactor, request); });
  // A body streamed in pieces: chunked for HTTP/1.1 clients.
  router.get("/count", [](Request&, Response& response) {
    for (int i = 1; i <= 3; ++i) response.write(std::to_string(i) + "\n");
    response.end();
  });

  torsion::web::HttpServerOptions options;  // limits and time-outs; these are the defaults
  options.limits.max_body = 1024 * 1024;    // 413 beyond
  options.header_timeout = 10;              // seconds from a request's first byte to its end
  options.idle_timeout = 60;                // between requests on a kept-alive connection
  torsion::web::HttpFactory site(reactor, router, options);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  // [end]

  std::string reply;
  RawClientFactory client(
      "GET /later/ann HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
      "GET /count HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      reply);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), client);
  reactor.run_until([&] { return reply.find("hello world\n") != std::string::npos; }, 10);
  const auto at = [&](std::string_view s) { return reply.find(s); };
  CHECK(at("later, ann\n") < at("you sent hi\n"));
  CHECK(at("you sent hi\n") < at("2\r\n1\n\r\n2\r\n2\n\r\n2\r\n3\n\r\n0\r\n\r\n"));
  CHECK(at("3\n\r\n0\r\n\r\n") < at("plain\n"));
  CHECK(at("plain\n") < at("hello world\n"));
}

TEST_CASE("web: an HttpPool reuses one connection for several requests") {
  using namespace docs;
  torsion::Reactor reactor;
  torsion::web::Router router;
  router.get("/hello", [](Request&, Response& response) { response.end("hello world\n"); });
  router.get("/count", [](Request&, Response& response) { response.end("1 2 3\n"); });
  router.get("/later/:name", [&reactor](Request& request) { return slow_hello(reactor, request); });
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  torsion::web::HttpPool pool(reactor);  // idle connections: 4 per host, closed after 30 s
  std::optional<std::string> bodies;
  three_gets(pool, "http://127.0.0.1:" + std::to_string(port->port())).deferred().add_callback(
      [&](std::string b) { bodies = std::move(b); });
  REQUIRE(reactor.run_until([&] { return bodies.has_value(); }, 10));
  CHECK(*bodies == "hello world\n1 2 3\nlater, bob\n");
  CHECK(pool.idle_count() == 1);
}

TEST_CASE("web: a streamed upload, and one refused at its head") {
  using namespace docs;
  torsion::Reactor reactor;
  std::size_t stored = 0;
  torsion::web::Router router;
  router.put("/upload", upload_handler(stored));
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  std::string ok, refused;
  RawClientFactory with_token("PUT /upload HTTP/1.1\r\nHost: x\r\nX-Token: secret\r\nConnection: close\r\n"
                              "Content-Length: 5\r\n\r\nhello",
                              ok);
  RawClientFactory without("PUT /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
                           refused);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), with_token);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), without);
  REQUIRE(reactor.run_until([&] {
    return ok.find("bytes\n") != std::string::npos && refused.find("token?\n") != std::string::npos;
  }, 10));
  CHECK(ok.find("HTTP/1.1 201 Created\r\n") == 0);
  CHECK(ok.find("stored 5 bytes\n") != std::string::npos);
  CHECK(refused.find("HTTP/1.1 401 Unauthorized\r\n") == 0);
  CHECK(stored == 5);
}

TEST_CASE("web: a whole body awaited after the head; a refused one dropped on a kept connection") {
  using namespace docs;
  torsion::Reactor reactor;
  torsion::web::Router router;
  router.post("/json", json_handler());
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  std::string reply;
  RawClientFactory client("POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                          "Content-Length: 5\r\n\r\nhello"
                          "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Expect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                          reply);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), client);
  REQUIRE(reactor.run_until([&] { return reply.find("of json\n") != std::string::npos; }, 10));
  CHECK(reply.find("HTTP/1.1 415 Unsupported Media Type\r\n") == 0);
  CHECK(reply.find("HTTP/1.1 100 Continue\r\n") != std::string::npos);
  CHECK(reply.find("got 2 bytes of json\n") != std::string::npos);
}

TEST_CASE("web: a streamed download through a redirect") {
  using namespace docs;
  torsion::Reactor reactor;
  torsion::web::Router router;
  router.get("/big", [](Request&, Response& response) { response.end(std::string(1024 * 1024, 'b')); });
  router.get("/old", [](Request&, Response& response) {
    Response moved(301);
    moved.set_header("Location", "/big");
    response.end(moved);
  });
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  torsion::web::HttpPool pool(reactor);
  std::optional<std::size_t> size;
  download(pool, "http://127.0.0.1:" + std::to_string(port->port()) + "/old").deferred().add_callback(
      [&](std::size_t n) { size = n; });
  REQUIRE(reactor.run_until([&] { return size.has_value(); }, 10));
  CHECK(*size == 1024 * 1024);
  CHECK(pool.idle_count() == 1);
}

TEST_CASE("web: ranges of a file and of a handler's own body") {
  using namespace docs;
  char path[] = "/tmp/torsion-docs-range-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "0123456789", 10) == 10);
  ::close(fd);
  torsion::Reactor reactor;
  torsion::web::Router router;
  serve_report(router, path);
  router.get("/blob", [](Request& request) {
    return torsion::succeed(part_of(request, "abcdefghij"));
  });
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);
  std::string reply;
  RawClientFactory client(
      "GET /report HTTP/1.1\r\nHost: x\r\nRange: bytes=-4\r\nIf-Range: \"v7\"\r\n\r\n"
      "GET /report HTTP/1.1\r\nHost: x\r\nRange: bytes=2-3\r\nIf-Range: \"v6\"\r\n\r\n"
      "GET /blob HTTP/1.1\r\nHost: x\r\nRange: bytes=20-\r\n\r\n"
      "GET /blob HTTP/1.1\r\nHost: x\r\nRange: bytes=3-5\r\nConnection: close\r\n\r\n",
      reply);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), client);
  const bool done = reactor.run_until([&] { return reply.find("\r\n\r\ndef") != std::string::npos; }, 10);
  std::remove(path);
  REQUIRE(done);
  const auto at = [&](std::string_view s) { return reply.find(s); };
  CHECK(at("HTTP/1.1 206 Partial Content") == 0);
  CHECK(at("Content-Range: bytes 6-9/10\r\n") < at("\r\n\r\n6789HTTP/1.1 200 OK"));
  CHECK(at("\r\n\r\n0123456789HTTP/1.1 416") != std::string::npos);
  CHECK(at("Content-Range: bytes */10\r\n") != std::string::npos);
  CHECK(at("Content-Range: bytes 3-5/10\r\n") < at("\r\n\r\ndef"));
}

TEST_CASE("web: a JSON answer with its Content-Type and another field") {
  using namespace docs;
  torsion::Reactor reactor;
  torsion::web::Router router;
  int hits = 0;
  // [snippet:json]
  // A JSON answer: Content-Type is "text/plain; charset=utf-8" unless set; set_header
  // replaces a field, add_header adds one more (Set-Cookie and the like).
  router.get("/api/status", [&hits](Request&, Response& response) {
    response.set_header("Content-Type", "application/json");
    response.set_header("Cache-Control", "no-store");
    response.end("{\"hits\": " + std::to_string(++hits) + "}\n");
  });
  // The same as a value, for a Deferred or a Task: the third argument is the Content-Type.
  router.get("/api/version", [](Request&) {
    return torsion::succeed(Response(200, "{\"version\": 1}\n", "application/json"));
  });
  // [end]
  torsion::web::HttpFactory site(reactor, router);
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, site, loopback);

  std::string reply;
  RawClientFactory client(
      "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /api/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      reply);
  torsion::connect_tcp(reactor, "127.0.0.1", port->port(), client);
  REQUIRE(reactor.run_until([&] { return reply.find("{\"version\": 1}\n") != std::string::npos; }, 10));
  const std::size_t second = reply.find("HTTP/1.1 200", 1);
  REQUIRE(second != std::string::npos);
  const std::string first_head = reply.substr(0, reply.find("\r\n\r\n"));
  const std::string second_head = reply.substr(second, reply.find("\r\n\r\n", second) - second);
  for (const std::string* head : {&first_head, &second_head}) {
    CHECK(head->find("\r\nContent-Type: application/json") != std::string::npos);
    CHECK(head->find("text/plain") == std::string::npos);  // replaced, not added
  }
  CHECK(first_head.find("\r\nCache-Control: no-store") != std::string::npos);
  CHECK(reply.find("{\"hits\": 1}\n") != std::string::npos);
  CHECK(hits == 1);
}
