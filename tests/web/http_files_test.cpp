// Files served by the HTTP server: static_files over sendfile(2) and over the buffered
// path give the same bytes, keep-alive goes on after a file, and a file that shrinks
// under a Content-Length ends the connection instead of framing the next answer wrongly.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/web/client_support.hpp"
#include "transports/tcp.hpp"
#include "web/http_client.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::await_response;
using torsion::test::pattern_stream;

namespace {

// A directory holding big.bin (the test pattern), removed at the end.
struct Site {
  std::string root;
  std::string big;
  std::size_t size;
  explicit Site(std::size_t bytes) : size(bytes) {
    char name[] = "/tmp/torsion-http-files-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    root = name;
    big = root + "/big.bin";
    FILE* f = std::fopen(big.c_str(), "wb");
    REQUIRE(f);
    const std::string data = pattern_stream().bytes(bytes);
    REQUIRE(std::fwrite(data.data(), 1, data.size(), f) == data.size());
    std::fclose(f);
  }
  ~Site() {
    ::unlink(big.c_str());
    ::rmdir(root.c_str());
  }
};

struct Server {
  Reactor reactor;
  Router router;
  std::unique_ptr<HttpFactory> site;
  std::shared_ptr<ListeningPort> port;
  std::unique_ptr<torsion::test::Counting> count;
  Server(const std::string& root, bool sendfile, std::function<void(Router&)> routes = {}) {
    reactor.set_handle_signals(false);
    router.get("/hello", [](Request&, Response& res) { res.end("hello world"); });
    if (routes) routes(router);
    router.get("/*path", static_files(root));
    HttpServerOptions options;
    options.sendfile = sendfile;
    site = std::make_unique<HttpFactory>(reactor, router, options);
    count = std::make_unique<torsion::test::Counting>(*site);
    port = listen_tcp(reactor, 0, *count, torsion::test::loopback());
  }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port->port()) + std::string(path);
  }
};

}  // namespace

TEST_CASE("http_files: a file over sendfile and over the buffered path, then keep-alive goes on") {
  Site files(3 * 1024 * 1024 + 17);
  for (const bool sendfile : {true, false}) {
    CAPTURE(sendfile);
    Server server(files.root, sendfile);
    HttpPool pool(server.reactor);
    for (int round = 0; round < 2; ++round) {
      auto file = await_response(server.reactor, pool.request("GET", server.url("/big.bin")), "the file");
      REQUIRE(file.response);
      CHECK(file.response->status == 200);
      CHECK(file.response->headers.get("Content-Length") == std::to_string(files.size));
      CHECK(file.response->body.size() == files.size);
      CHECK(pattern_stream().matches(0, file.response->body));
      auto hello = await_response(server.reactor, pool.request("GET", server.url("/hello")), "hello");
      REQUIRE(hello.response);
      CHECK(hello.response->body == "hello world");
    }
    CHECK(server.count->accepted == 1);  // one connection carried all four answers
  }
}

TEST_CASE("http_files: a file that shrinks under its Content-Length ends the connection") {
  Site files(2 * 1024 * 1024);
  for (const bool sendfile : {true, false}) {
    CAPTURE(sendfile);
    // The handler promises the whole file, then the file loses its second half.
    Server server(files.root, sendfile, [&](Router& router) {
      router.get("/shrinking", [&](Request&, Response& res) {
        res.set_file(files.big);
        REQUIRE(::truncate(files.big.c_str(), static_cast<off_t>(files.size / 2)) == 0);
        res.end();
      });
    });
    auto got = await_response(server.reactor, http_request(server.reactor, "GET", server.url("/shrinking")),
                              "the cut answer");
    CHECK_FALSE(got.response);  // never a short body taken for a whole one
    CHECK(got.error);
    REQUIRE(::truncate(files.big.c_str(), 0) == 0);
    FILE* f = std::fopen(files.big.c_str(), "wb");
    REQUIRE(f);
    const std::string data = pattern_stream().bytes(files.size);
    REQUIRE(std::fwrite(data.data(), 1, data.size(), f) == data.size());
    std::fclose(f);
  }
}
