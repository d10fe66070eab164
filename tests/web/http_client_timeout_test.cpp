// The client's response-head time-out (HttpClientOptions::headers_timeout), on a manual
// clock through an HttpPool, against torsion's own server on 127.0.0.1.

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/client_support.hpp"
#include "transports/tcp.hpp"
#include "web/http_client.hpp"
#include "web/http_server.hpp"
#include "web/router.hpp"

using namespace torsion;
using namespace torsion::web;
using torsion::test::Fetched;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// A server whose /held keeps its response for the test to answer, in parts.
struct HeldServer {
  explicit HeldServer(Reactor& reactor) : site(reactor, router()) {
    port = listen_tcp(reactor, 0, site, loopback());
  }
  Router router() {
    Router r;
    r.get("/held", [this](Request&, Response& res) { held = res; });
    return r;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port->port()) + "/held"; }
  std::optional<Response> held;
  HttpFactory site;
  std::shared_ptr<ListeningPort> port;
};

// Sends a GET for `server`'s /held through a pool on `clock`, with only the head time-out;
// `stream`: the response comes at its head (stream_body).
void start(Reactor& reactor, HttpPool& pool, HeldServer& server, Fetched& out, bool stream = false) {
  HttpClientOptions o;
  o.headers_timeout = 2;
  o.idle_timeout = 0;
  o.response_timeout = 0;
  o.stream_body = stream;
  pool.request("GET", server.url(), {}, {}, o)
      .add_callbacks([&out](ClientResponse r) { out.response = std::move(r); },
                     [&out](std::exception_ptr e) { out.error = e; });
  REQUIRE(wait_for(reactor, [&] { return server.held.has_value(); }, "the request at the server"));
}

}  // namespace

TEST_CASE("http_client: no response head within headers_timeout fails with TimeoutError") {
  Reactor reactor;
  testing::ManualClock clock;
  HeldServer server(reactor);
  HttpPool pool(reactor, clock);
  Fetched out;
  start(reactor, pool, server, out);
  clock.advance(1.9);
  CHECK_FALSE(out.done());
  clock.advance(0.2);
  REQUIRE(out.error);
  CHECK(error_is<TimeoutError>(out.error));
  REQUIRE(wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the connection closed"));
}

TEST_CASE("http_client: a head in time, then a slow body: headers_timeout does not count the body") {
  Reactor reactor;
  testing::ManualClock clock;
  HeldServer server(reactor);
  HttpPool pool(reactor, clock);
  Fetched out;
  start(reactor, pool, server, out, true);
  server.held->set_header("Content-Length", "4");
  server.held->write("he");  // the head and a first part of the body
  REQUIRE(wait_for(reactor, [&] { return out.done(); }, "the head at the client"));
  REQUIRE(out.response);
  clock.advance(5);  // well past headers_timeout: the body is not its business
  server.held->end("ll");
  torsion::test::Drain drain(std::move(*out.response));
  drain.next();
  REQUIRE(wait_for(reactor, [&] { return drain.ended || drain.error; }, "the body"));
  CHECK_FALSE(drain.error);
  CHECK(drain.body == "hell");
}
