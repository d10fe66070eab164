// http_request against torsion's own server, python3's http.server and Debian's nginx
// (started on 127.0.0.1 with a generated configuration, stopped by its PID), and its
// failures: a refused connection, a malformed response, a time-out, a bad URL.
#include "web/http_client.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/client_support.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::loopback;
using torsion::test::await_response;
using torsion::test::Counting;
using torsion::test::Fetched;

namespace {

Fetched fetch(Reactor& reactor, std::string method, const std::string& url, std::string body = {},
              HttpClientOptions options = {}) {
  return await_response(reactor, http_request(reactor, std::move(method), url, {}, std::move(body), options),
                        url.c_str());
}

// A server that answers every connection with fixed bytes, then closes.
struct Canned : Protocol {
  std::string reply;
  explicit Canned(std::string r) : reply(std::move(r)) {}
  void data_received(std::string_view) override {
    transport().write(reply);
    transport().lose_connection();
  }
};

struct Child : ProcessProtocol {
  std::string out, err;
  std::optional<ExitStatus> status;
  void out_received(std::string_view d) override { out.append(d); }
  void err_received(std::string_view d) override { err.append(d); }
  void process_ended(const ExitStatus& s) override { status = s; }
};

Fetched fetch(Reactor& reactor, HttpPool& pool, std::string method, const std::string& url, std::string body = {}) {
  return await_response(reactor, pool.request(std::move(method), url, {}, std::move(body)), url.c_str());
}

// Answers the first request of each connection keep-alive, then closes the connection
// on the next one without a byte: a server that timed the connection out.
struct AnswersOnce : Protocol {
  int answered = 0;
  void data_received(std::string_view) override {
    if (answered++ == 0)
      transport().write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce");
    else
      transport().lose_connection();
  }
};

bool have(const std::string& path) { return std::filesystem::exists(path); }

// Kills a child still running when a test ends early (a failed REQUIRE), so that no
// server outlives the test.
struct KillOnExit {
  std::shared_ptr<ProcessTransport> process;
  ~KillOnExit() {
    if (process && !process->exit_status()) process->signal_process(SIGKILL);
  }
};

}  // namespace

TEST_CASE("http_client: GET, POST, HEAD, chunked and 404 from torsion's server") {
  Reactor reactor;
  Router router;
  router.get("/hello", [](Request&, Response& res) { res.end("hello world"); });
  router.post("/echo", [](Request& req, Response& res) { res.end("got " + req.body()); });
  router.get("/stream", [](Request&, Response& res) {
    res.write("a");
    res.write("b");
    res.end();
  });
  HttpFactory site(reactor, router);
  auto port = listen_tcp(reactor, 0, site, loopback());
  const std::string base = "http://127.0.0.1:" + std::to_string(port->port());
  Fetched o = fetch(reactor, "GET", base + "/hello");
  REQUIRE(o.response);
  CHECK(o.response->status == 200);
  CHECK(o.response->body == "hello world");
  CHECK(o.response->headers.get("server") == "torsion");
  CHECK(fetch(reactor, "POST", base + "/echo", "payload").response->body == "got payload");
  CHECK(fetch(reactor, "GET", base + "/stream").response->body == "ab");
  const Fetched head = fetch(reactor, "HEAD", base + "/hello");
  CHECK(head.response->headers.get("content-length") == "11");
  CHECK(head.response->body.empty());
  CHECK(fetch(reactor, "GET", base + "/nothing").response->status == 404);
  CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "connections closed"));
}

TEST_CASE("http_pool: sequential requests share one kept-alive connection to torsion's server") {
  Reactor reactor;
  Router router;
  router.get("/hello", [](Request&, Response& res) { res.end("hello world"); });
  router.post("/echo", [](Request& req, Response& res) { res.end("got " + req.body()); });
  router.get("/stream", [](Request&, Response& res) {
    res.write("a");
    res.write("b");
    res.end();
  });
  HttpFactory site(reactor, router);
  Counting counting(site);
  auto port = listen_tcp(reactor, 0, counting, loopback());
  const std::string base = "http://127.0.0.1:" + std::to_string(port->port());
  HttpPool pool(reactor);
  for (int i = 0; i < 3; ++i) {
    const Fetched o = fetch(reactor, pool, "GET", base + "/hello");
    REQUIRE(o.response);
    CHECK(o.response->body == "hello world");
    CHECK(pool.idle_count() == 1);
  }
  CHECK(fetch(reactor, pool, "POST", base + "/echo", "x").response->body == "got x");
  CHECK(fetch(reactor, pool, "GET", base + "/stream").response->body == "ab");
  CHECK(fetch(reactor, pool, "HEAD", base + "/hello").response->body.empty());
  CHECK(fetch(reactor, pool, "GET", base + "/nothing").response->status == 404);
  CHECK(counting.accepted == 1);

  // A request made from the callback of the last one reuses the same connection.
  Fetched second;
  pool.request("GET", base + "/hello").add_callbacks(
      [&](ClientResponse) {
        pool.request("GET", base + "/stream").add_callbacks([&](ClientResponse r) { second.response = std::move(r); },
                                                            [&](std::exception_ptr e) { second.error = e; });
      },
      [&](std::exception_ptr e) { second.error = e; });
  REQUIRE(test::wait_for(reactor, [&] { return second.done(); }, "the chained request"));
  REQUIRE(second.response);
  CHECK(second.response->body == "ab");
  CHECK(counting.accepted == 1);

  // Two at once need two connections; both are kept afterwards (the cap is 4).
  Fetched a, b;
  pool.request("GET", base + "/hello").add_callbacks([&](ClientResponse r) { a.response = std::move(r); },
                                                     [&](std::exception_ptr e) { a.error = e; });
  pool.request("GET", base + "/hello").add_callbacks([&](ClientResponse r) { b.response = std::move(r); },
                                                     [&](std::exception_ptr e) { b.error = e; });
  REQUIRE(test::wait_for(reactor, [&] { return a.done() && b.done(); }, "two requests at once"));
  CHECK(a.response);
  CHECK(b.response);
  CHECK(counting.accepted == 2);
  CHECK(pool.idle_count() == 2);
}

TEST_CASE("http_pool: a server that closes after each response, and a retry on a connection lost idle") {
  Reactor reactor;
  auto closing = FunctionFactory<Factory>([](const Address&) {
    return std::make_unique<Canned>("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  Counting counting(closing);
  auto port = listen_tcp(reactor, 0, counting, loopback());
  const std::string url = "http://127.0.0.1:" + std::to_string(port->port()) + "/";
  HttpPool pool(reactor);
  for (int i = 0; i < 3; ++i) {
    const Fetched o = fetch(reactor, pool, "GET", url);
    REQUIRE(o.response);
    CHECK(o.response->body == "ok");
    // The server's close reaches the idle connection, which leaves the pool.
    CHECK(test::wait_for(reactor, [&] { return pool.idle_count() == 0; }, "the closed connection leaves the pool"));
  }
  CHECK(counting.accepted == 3);

  // The server drops a kept-alive connection just as the next request goes out: a GET is
  // sent again, once, on a new connection; a POST is not (it may have been processed).
  auto once = FunctionFactory<Factory>([](const Address&) { return std::make_unique<AnswersOnce>(); });
  Counting counting_once(once);
  auto port_once = listen_tcp(reactor, 0, counting_once, loopback());
  const std::string url_once = "http://127.0.0.1:" + std::to_string(port_once->port()) + "/";
  REQUIRE(fetch(reactor, pool, "GET", url_once).response);
  REQUIRE(pool.idle_count() == 1);
  const Fetched retried = fetch(reactor, pool, "GET", url_once);
  REQUIRE(retried.response);
  CHECK(retried.response->body == "once");
  CHECK(counting_once.accepted == 2);
  REQUIRE(pool.idle_count() == 1);
  const Fetched post = fetch(reactor, pool, "POST", url_once, "data");
  CHECK(error_is<ConnectionError>(post.error));
  CHECK(counting_once.accepted == 2);

  // HTTP/1.0 and Connection: close answers are not kept.
  auto http10 = FunctionFactory<Factory>([](const Address&) {
    return std::make_unique<Canned>("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  auto port10 = listen_tcp(reactor, 0, http10, loopback());
  CHECK(fetch(reactor, pool, "GET", "http://127.0.0.1:" + std::to_string(port10->port()) + "/").response);
  CHECK(pool.idle_count() == 0);
  CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "connections closed"));
}

TEST_CASE("http_pool: the idle time-out on the manual clock, and a pool destroyed with a request in flight") {
  Reactor reactor;
  testing::ManualClock clock;
  Router router;
  std::optional<Response> held;
  router.get("/hello", [](Request&, Response& res) { res.end("hello"); });
  router.get("/held", [&](Request&, Response& res) { held = res; });
  HttpFactory site(reactor, router);
  Counting counting(site);
  auto port = listen_tcp(reactor, 0, counting, loopback());
  const std::string base = "http://127.0.0.1:" + std::to_string(port->port());
  {
    HttpPoolOptions options;
    options.idle_timeout = 5;
    HttpPool pool(reactor, clock, options);
    REQUIRE(fetch(reactor, pool, "GET", base + "/hello").response);
    REQUIRE(pool.idle_count() == 1);
    clock.advance(4.9);
    CHECK(pool.idle_count() == 1);
    REQUIRE(fetch(reactor, pool, "GET", base + "/hello").response);  // reused: the time-out starts again
    CHECK(counting.accepted == 1);
    clock.advance(4.9);
    CHECK(pool.idle_count() == 1);
    clock.advance(0.2);
    CHECK(pool.idle_count() == 0);
    CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the idle connection closed"));
    REQUIRE(fetch(reactor, pool, "GET", base + "/hello").response);
    CHECK(counting.accepted == 2);
  }  // the pool's destructor closes its idle connection
  CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the pool's connections closed"));

  Fetched late;
  {
    HttpPool pool(reactor);
    pool.request("GET", base + "/held").add_callbacks([&](ClientResponse r) { late.response = std::move(r); },
                                                      [&](std::exception_ptr e) { late.error = e; });
    REQUIRE(test::wait_for(reactor, [&] { return held.has_value(); }, "the request reached the handler"));
  }
  held->end("after the pool");
  REQUIRE(test::wait_for(reactor, [&] { return late.done(); }, "the answer after the pool's end"));
  REQUIRE(late.response);
  CHECK(late.response->body == "after the pool");
  CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "its connection closed"));
}

TEST_CASE("http_pool: a reactor destroyed with pooled connections leaves no idle time-out behind") {
  testing::ManualClock clock;  // outlives the reactor and the pool
  std::optional<HttpPool> outlived;
  {
    Reactor reactor;
    Router router;
    router.get("/hello", [](Request&, Response& res) { res.end("hello"); });
    HttpFactory site(reactor, router);
    auto port = listen_tcp(reactor, 0, site, loopback());
    outlived.emplace(reactor, clock);
    REQUIRE(fetch(reactor, *outlived, "GET", "http://127.0.0.1:" + std::to_string(port->port()) + "/hello").response);
    REQUIRE(outlived->idle_count() == 1);
  }  // the reactor closes the connection without callbacks
  CHECK(outlived->idle_count() == 0);
  clock.advance(60);  // the idle time-out was cancelled with its connection
  outlived.reset();
}

TEST_CASE("http_client: clear failures") {
  Reactor reactor;
  auto refused_port = [&] {
    auto f = make_factory<Protocol>();
    auto p = listen_tcp(reactor, 0, f, loopback());
    const int n = p->port();
    p->stop_listening();
    return n;
  }();
  const Fetched refused = fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(refused_port) + "/");
  REQUIRE(refused.error);
  CHECK(error_is<ConnectionError>(refused.error));
  CHECK(describe_error(refused.error).find("refused") != std::string::npos);

  auto bad = FunctionFactory<Factory>([](const Address&) {
    return std::make_unique<Canned>("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
  });
  auto bad_port = listen_tcp(reactor, 0, bad, loopback());
  const Fetched malformed = fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(bad_port->port()) + "/");
  CHECK(error_is<HttpError>(malformed.error));

  auto short_reply = FunctionFactory<Factory>([](const Address&) {
    return std::make_unique<Canned>("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello");
  });
  auto short_port = listen_tcp(reactor, 0, short_reply, loopback());
  const Fetched cut = fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(short_port->port()) + "/");
  CHECK(error_is<ConnectionError>(cut.error));

  auto silent = make_factory<Protocol>();
  auto silent_port = listen_tcp(reactor, 0, silent, loopback());
  HttpClientOptions quick;
  quick.connect_timeout = 0.2;
  quick.response_timeout = 0.2;
  const Fetched slow = fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(silent_port->port()) + "/", {}, quick);
  CHECK(error_is<TimeoutError>(slow.error));

  CHECK_THROWS_AS(http_request(reactor, "GET", "ftp://example.com/"), std::invalid_argument);
  CHECK_THROWS_AS(http_request(reactor, "GET", "http://host:99999/"), std::invalid_argument);
  CHECK_THROWS_AS(http_request(reactor, "GET", "http:///x"), std::invalid_argument);
  CHECK(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "connections closed"));
}

TEST_CASE("http_client: python3 http.server as the peer") {
  const std::string python = have("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  Reactor reactor;
  reactor.set_handle_signals(false);
  const auto dir = std::filesystem::temp_directory_path() / ("torsion_http_client_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "file.txt") << "from http.server\n";
  Child server;
  std::shared_ptr<ProcessTransport> process;
  try {
    process = spawn_process(reactor, server, {python, "-u", "-m", "http.server", "--bind", "127.0.0.1",
                                              "--directory", dir.string(), "0"});
  } catch (const std::system_error& e) {
    MESSAGE("skipped: python3 cannot be started: " << e.what());
    return;
  }
  KillOnExit guard{process};
  REQUIRE(test::wait_for(reactor, [&] { return server.out.find(" port ") != std::string::npos &&
                                                server.out.find('\n') != std::string::npos; },
                         "http.server's port"));
  const int port = std::stoi(server.out.substr(server.out.find(" port ") + 6));
  const Fetched o = fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(port) + "/file.txt");
  REQUIRE(o.response);
  CHECK(o.response->status == 200);
  CHECK(o.response->body == "from http.server\n");
  CHECK(fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(port) + "/missing").response->status == 404);
  {  // http.server answers HTTP/1.0 and closes: the pool keeps nothing and still works
    HttpPool pool(reactor);
    for (int i = 0; i < 2; ++i) {
      const Fetched p = fetch(reactor, pool, "GET", "http://127.0.0.1:" + std::to_string(port) + "/file.txt");
      REQUIRE(p.response);
      CHECK(p.response->body == "from http.server\n");
    }
    CHECK(pool.idle_count() == 0);
  }
  process->signal_process(SIGTERM);
  CHECK(test::wait_for(reactor, [&] { return server.status.has_value(); }, "http.server's end"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("http_client: Debian's nginx as the peer") {
  if (!have("/usr/sbin/nginx")) {
    MESSAGE("skipped: nginx is not installed (apt-get install nginx-light)");
    return;
  }
  Reactor reactor;
  reactor.set_handle_signals(false);
  // A port for nginx: bound by us, released, then given to nginx (it cannot take port 0).
  auto probe = make_factory<Protocol>();
  auto p = listen_tcp(reactor, 0, probe, loopback());
  const int port = p->port();
  p->stop_listening();
  const auto dir = std::filesystem::temp_directory_path() / ("torsion_nginx_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "nginx.conf")
      << "worker_processes 1; master_process off; daemon off; pid " << (dir / "nginx.pid").string()
      << "; error_log stderr notice;\n"
      << "events { worker_connections 64; }\n"
      << "http { access_log off; client_body_temp_path " << dir.string() << ";\n"
      << "  server { listen 127.0.0.1:" << port << ";\n"
      << "    location = /hello { return 200 \"hello from nginx\"; }\n"
      << "    location = /connection { return 200 \"$connection\"; } } }\n";
  Child nginx;
  auto process = spawn_process(reactor, nginx, {"/usr/sbin/nginx", "-c", (dir / "nginx.conf").string(),
                                                "-p", dir.string()});
  KillOnExit guard{process};
  // nginx reports its limits (getrlimit) once its listening sockets are open.
  REQUIRE(test::wait_for(reactor, [&] {
    return nginx.err.find("getrlimit(RLIMIT_NOFILE)") != std::string::npos || nginx.status.has_value();
  }, "nginx's start"));
  const Fetched o = fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(port) + "/hello");
  INFO(nginx.err);
  REQUIRE(o.response);
  CHECK(o.response->status == 200);
  CHECK(o.response->body == "hello from nginx");
  CHECK(o.response->headers.get("server").value_or("").find("nginx") == 0);
  CHECK(fetch(reactor, "GET", "http://127.0.0.1:" + std::to_string(port) + "/none").response->status == 404);
  {  // nginx's $connection is its serial number of the connection: the pool reuses one
    HttpPool pool(reactor);
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/connection";
    const Fetched first = fetch(reactor, pool, "GET", url);
    REQUIRE(first.response);
    for (int i = 0; i < 3; ++i) CHECK(fetch(reactor, pool, "GET", url).response->body == first.response->body);
    CHECK(pool.idle_count() == 1);
  }
  process->signal_process(SIGTERM);
  CHECK(test::wait_for(reactor, [&] { return nginx.status.has_value(); }, "nginx's end"));
  std::filesystem::remove_all(dir);
}
