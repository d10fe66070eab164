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
#include "tests/support/wait.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;

namespace {

struct Fetched {
  std::optional<ClientResponse> response;
  std::exception_ptr error;
  bool done() const { return response || error; }
};

Fetched fetch(Reactor& reactor, std::string method, const std::string& url, std::string body = {},
              HttpClientOptions options = {}) {
  Fetched o;
  http_request(reactor, std::move(method), url, {}, std::move(body), options)
      .add_callbacks([&](ClientResponse r) { o.response = std::move(r); },
                     [&](std::exception_ptr e) { o.error = e; });
  REQUIRE(test::wait_for(reactor, [&] { return o.done(); }, url.c_str()));
  return o;
}

TcpListenOptions loopback() {
  TcpListenOptions o;
  o.interface = "127.0.0.1";
  return o;
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

  CHECK_THROWS_AS(http_request(reactor, "GET", "https://example.com/"), std::invalid_argument);
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
      << "    location = /hello { return 200 \"hello from nginx\"; } } }\n";
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
  process->signal_process(SIGTERM);
  CHECK(test::wait_for(reactor, [&] { return nginx.status.has_value(); }, "nginx's end"));
  std::filesystem::remove_all(dir);
}
