// The HTTP client's streamed response bodies (back-pressure down to the server's
// producer), redirects, the idle time-out between bytes and HttpPool's per-host cap,
// against torsion's own server on 127.0.0.1.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
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
using torsion::test::await_response;
using torsion::test::Counting;
using torsion::test::Drain;
using torsion::test::Fetched;
using torsion::test::loopback;
using torsion::testing::ManualClock;

namespace {

// Writes `total` bytes of a response in 64 KiB pieces as fast as the transport takes
// them: a streaming producer, paused by the server above its high mark.
struct Pump final : Producer {
  Reactor& reactor;
  Response response;
  std::size_t left;
  bool paused = false;
  int pauses = 0;
  std::size_t produced = 0;
  Pump(Reactor& r, Response res, std::size_t total) : reactor(r), response(std::move(res)), left(total) {
    response.register_producer(*this, true);
    step();
  }
  void pause_producing() override {
    paused = true;
    ++pauses;
  }
  void resume_producing() override {
    paused = false;
    reactor.call_soon([this] { step(); });
  }
  void stop_producing() override { left = 0; }
  void step() {
    while (!paused && left > 0) {
      const std::size_t n = std::min<std::size_t>(left, 64 * 1024);
      response.write(std::string(n, 'p'));
      left -= n;
      produced += n;
    }
    if (left == 0 && !response.finished()) response.end();
  }
};

// A server that sends a response head and the first bytes of its body, then whatever
// the test writes through `out`.
struct Stalling : Protocol {
  std::vector<Stalling*>* all;
  explicit Stalling(std::vector<Stalling*>* a) : all(a) {}
  void data_received(std::string_view) override {
    all->push_back(this);
    transport().write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
  }
};

}  // namespace

TEST_CASE("http_client_stream: a streamed body is read only as fast as the reader reads; the server's producer pauses") {
  Reactor reactor;
  std::unique_ptr<Pump> pump;
  Router router;
  const std::size_t total = 32 * 1024 * 1024;
  router.get("/big", [&](Request&, Response& res) { pump = std::make_unique<Pump>(reactor, res, total); });
  HttpFactory site(reactor, router);
  auto port = listen_tcp(reactor, 0, site, loopback());
  HttpClientOptions o;
  o.stream_body = true;
  o.body_buffer = 16 * 1024;
  const std::string url = "http://127.0.0.1:" + std::to_string(port->port()) + "/big";
  HttpPool pool(reactor);
  Fetched head = await_response(reactor, pool.request("GET", url, {}, {}, o), "the head");
  REQUIRE(head.response);
  CHECK(head.response->status == 200);
  CHECK(head.response->body.empty());
  REQUIRE(pump);
  // Nobody reads: the server's producer is paused, far from the end.
  REQUIRE(test::wait_for(reactor, [&] { return pump->paused && pump->pauses > 0; }, "the server's producer paused"));
  for (int i = 0; i < 50; ++i) reactor.run_until([] { return false; }, 0.001);
  CHECK(pump->paused);
  CHECK(pump->produced < total / 2);
  Drain drain{*head.response};
  head.response.reset();
  drain.next();
  REQUIRE(test::wait_for(reactor, [&] { return drain.ended || drain.error; }, "the whole body"));
  CHECK_FALSE(drain.error);
  CHECK(drain.bytes == total);
  CHECK(drain.largest <= 16 * 1024);
  CHECK(drain.body == std::string(drain.body.size(), 'p'));
  // The connection went back to the pool once the body ended.
  REQUIRE(test::wait_for(reactor, [&] { return pool.idle_count() == 1; }, "the connection back in the pool"));
  Fetched again = await_response(reactor, pool.request("GET", "http://127.0.0.1:" + std::to_string(port->port()) + "/none"), "a reuse");
  REQUIRE(again.response);
  CHECK(again.response->status == 404);
}

TEST_CASE("http_client_stream: read_some on a whole body; a streamed response dropped early closes its connection") {
  Reactor reactor;
  Router router;
  router.get("/small", [](Request&, Response& res) { res.end("small"); });
  std::unique_ptr<Pump> pump;
  router.get("/big", [&](Request&, Response& res) { pump = std::make_unique<Pump>(reactor, res, 16 * 1024 * 1024); });
  HttpFactory site(reactor, router);
  Counting counting(site);
  auto port = listen_tcp(reactor, 0, counting, loopback());
  const std::string base = "http://127.0.0.1:" + std::to_string(port->port());
  HttpPool pool(reactor);
  Fetched whole = await_response(reactor, pool.request("GET", base + "/small"), "/small");
  REQUIRE(whole.response);
  Drain d{*whole.response};
  d.next();
  CHECK(d.ended);
  CHECK(d.body == "small");

  HttpClientOptions o;
  o.stream_body = true;
  {
    Fetched head = await_response(reactor, pool.request("GET", base + "/big", {}, {}, o), "/big");
    REQUIRE(head.response);
    CHECK(counting.accepted == 1);  // /small's connection, reused
  }  // dropped before its end: the connection cannot be reused, it is closed
  REQUIRE(test::wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the abandoned connection closed"));
  CHECK(pool.idle_count() == 0);
  CHECK(await_response(reactor, pool.request("GET", base + "/small"), "/small again").response->body == "small");
  CHECK(counting.accepted == 2);
}

TEST_CASE("http_client_stream: redirects are off by default, then followed up to a limit") {
  Reactor reactor;
  Router other_router;
  other_router.get("/auth", [](Request& req, Response& res) {
    res.end("auth=" + std::string(req.header("authorization").value_or("none")));
  });
  HttpFactory other_site(reactor, other_router);
  auto other = listen_tcp(reactor, 0, other_site, loopback());
  const std::string other_base = "http://127.0.0.1:" + std::to_string(other->port());

  Router router;
  auto redirect = [](int status, std::string location) {
    return [status, location](Request&, Response& res) {
      Response r(status, "moved\n");
      r.set_header("Location", location);
      res.end(r);
    };
  };
  router.get("/r301", redirect(301, "/echo"));
  router.post("/r302", redirect(302, "/echo"));
  router.post("/r303", redirect(303, "/echo"));
  router.post("/r307", redirect(307, "/echo"));
  router.put("/r308", redirect(308, "echo"));  // relative to /
  router.get("/loop", redirect(302, "/loop"));
  router.get("/dir/a", redirect(302, "b?x=1"));
  router.get("/dir/b", [](Request& req, Response& res) { res.end("b " + std::string(req.query())); });
  router.get("/away", redirect(302, other_base + "/auth"));
  router.get("/here", redirect(302, "/auth"));
  router.get("/auth", [](Request& req, Response& res) {
    res.end("auth=" + std::string(req.header("authorization").value_or("none")));
  });
  auto echo = [](Request& req, Response& res) { res.end(req.method() + " [" + req.body() + "]"); };
  for (const char* m : {"GET", "POST", "PUT"}) router.route(m, "/echo", echo);
  HttpFactory site(reactor, router);
  Counting counting(site);
  auto port = listen_tcp(reactor, 0, counting, loopback());
  const std::string base = "http://127.0.0.1:" + std::to_string(port->port());
  auto fetch = [&](std::string method, const std::string& path, std::string body, int max, Headers headers = {}) {
    HttpClientOptions o;
    o.max_redirects = max;
    return await_response(reactor, http_request(reactor, std::move(method), base + path, std::move(headers), std::move(body), o), path.c_str());
  };

  Fetched off = fetch("GET", "/r301", "", 0);
  REQUIRE(off.response);
  CHECK(off.response->status == 301);
  CHECK(off.response->headers.get("location") == "/echo");
  CHECK(off.response->url == base + "/r301");

  Fetched r301 = fetch("GET", "/r301", "", 5);
  REQUIRE(r301.response);
  CHECK(r301.response->status == 200);
  CHECK(r301.response->body == "GET []");
  CHECK(r301.response->url == base + "/echo");
  CHECK(fetch("POST", "/r302", "data", 5).response->body == "GET []");
  CHECK(fetch("POST", "/r303", "data", 5).response->body == "GET []");
  CHECK(fetch("POST", "/r307", "data", 5).response->body == "POST [data]");
  CHECK(fetch("PUT", "/r308", "data", 5).response->body == "PUT [data]");
  CHECK(fetch("GET", "/dir/a", "", 1).response->body == "b x=1");

  Fetched loop = fetch("GET", "/loop", "", 3);
  REQUIRE(loop.error);
  CHECK(error_is<HttpError>(loop.error));
  CHECK(describe_error(loop.error).find("too many redirects") != std::string::npos);

  // Authorization goes along to the same host, not to another one.
  Headers auth;
  auth.add("Authorization", "Bearer t");
  CHECK(fetch("GET", "/here", "", 1, auth).response->body == "auth=Bearer t");
  CHECK(fetch("GET", "/away", "", 1, auth).response->body == "auth=none");

  // Through a pool, the hops share one kept-alive connection.
  const int before = counting.accepted;
  HttpPool pool(reactor);
  HttpClientOptions o;
  o.max_redirects = 2;
  Fetched pooled = await_response(reactor, pool.request("GET", base + "/dir/a", {}, {}, o), "pooled redirect");
  REQUIRE(pooled.response);
  CHECK(pooled.response->body == "b x=1");
  CHECK(counting.accepted == before + 1);
}

TEST_CASE("http_client_stream: the idle time-out is between bytes, not counting the reader's own pauses") {
  Reactor reactor;
  ManualClock clock;
  std::vector<Stalling*> servers;
  auto factory = make_factory<Stalling>(&servers);
  auto port = listen_tcp(reactor, 0, factory, loopback());
  HttpPool pool(reactor, clock);  // the pool's time-outs run on the manual clock
  HttpClientOptions o;
  o.idle_timeout = 5;
  o.stream_body = true;
  o.body_buffer = 2;
  Fetched head = await_response(reactor, pool.request("GET", "http://127.0.0.1:" + std::to_string(port->port()) + "/", {}, {}, o), "the head");
  REQUIRE(head.response);
  ClientResponse& response = *head.response;
  struct Read {
    std::optional<std::string> data;
    std::exception_ptr error;
    bool done() const { return data || error; }
  };
  auto read = [&] {
    auto r = std::make_shared<Read>();
    response.read_some().add_callbacks([r](std::string d) { r->data = std::move(d); },
                                       [r](std::exception_ptr e) { r->error = e; });
    return r;
  };
  std::string got;
  while (got.size() < 2) {
    auto r = read();
    REQUIRE(test::wait_for(reactor, [&] { return r->done(); }, "ab"));
    REQUIRE(r->data);
    got += *r->data;
  }
  auto waiting = read();
  clock.advance(4);  // less than the time-out since the last byte
  CHECK_FALSE(waiting->done());
  servers.at(0)->transport().write("cdefgh");
  // The reader takes "cd"; "ef" fills its buffer of 2: reading pauses, and the wait with it.
  REQUIRE(test::wait_for(reactor, [&] { return waiting->done() && clock.pending_count() == 0; }, "a full buffer"));
  CHECK(waiting->data == "cd");
  clock.advance(100);  // the reader's own pause is not the server's silence
  for (const char* expected : {"ef", "gh"}) {
    auto r = read();
    REQUIRE(test::wait_for(reactor, [&] { return r->done(); }, expected));
    CHECK(r->data == expected);
  }
  REQUIRE(test::wait_for(reactor, [&] { return clock.pending_count() > 0; }, "reading again"));
  auto last = read();  // "ij" never comes
  clock.advance(5.5);
  REQUIRE(last->error);
  CHECK(error_is<TimeoutError>(last->error));
}

TEST_CASE("http_client_stream: torsion's server stalling inside a body hits the idle time-out") {
  Reactor reactor;
  ManualClock clock;
  std::optional<Response> held;
  Router router;
  router.get("/stall", [&](Request&, Response& res) {
    res.set_header("Content-Length", "10");
    res.write("ab");
    held = res;
  });
  HttpFactory site(reactor, router);
  auto port = listen_tcp(reactor, 0, site, loopback());
  HttpPool pool(reactor, clock);
  HttpClientOptions o;
  o.idle_timeout = 5;
  o.stream_body = true;
  Fetched head = await_response(reactor, pool.request("GET", "http://127.0.0.1:" + std::to_string(port->port()) + "/stall", {}, {}, o), "the head");
  REQUIRE(head.response);
  Drain drain(*head.response);
  drain.next();
  REQUIRE(test::wait_for(reactor, [&] { return drain.bytes == 2; }, "ab"));
  clock.advance(5.5);
  REQUIRE(drain.error);
  CHECK(error_is<TimeoutError>(drain.error));
  REQUIRE(test::wait_for(reactor, [&] { return !held->connected(); }, "the server saw the connection go"));
}

TEST_CASE("http_client_stream: HttpPool caps the connections per host; requests beyond wait in order") {
  Reactor reactor;
  std::vector<Response> held;
  std::vector<std::string> seen;
  Router router;
  router.get("/:n", [&](Request& req, Response& res) {
    seen.emplace_back(req.param("n"));
    held.push_back(res);
  });
  HttpFactory site(reactor, router);
  Counting counting(site);
  auto port = listen_tcp(reactor, 0, counting, loopback());
  const std::string base = "http://127.0.0.1:" + std::to_string(port->port()) + "/";
  HttpPoolOptions po;
  po.max_per_host = 2;
  HttpPool pool(reactor, po);
  std::vector<std::optional<std::string>> bodies(5);
  for (int i = 0; i < 5; ++i)
    pool.request("GET", base + std::to_string(i)).add_callback([&bodies, i](ClientResponse r) { bodies[static_cast<std::size_t>(i)] = r.body; });
  REQUIRE(test::wait_for(reactor, [&] { return held.size() == 2; }, "two requests at the server"));
  reactor.run_until([] { return false; }, 0.05);
  CHECK(held.size() == 2);
  CHECK(counting.accepted == 2);
  for (std::size_t answered = 0; answered < 5; ++answered) {
    REQUIRE(test::wait_for(reactor, [&] { return held.size() > answered; }, "the next request"));
    held[answered].end("answer " + seen[answered]);
  }
  REQUIRE(test::wait_for(reactor, [&] {
    for (const auto& b : bodies)
      if (!b) return false;
    return true;
  }, "five answers"));
  for (int i = 0; i < 5; ++i) CHECK(*bodies[static_cast<std::size_t>(i)] == "answer " + std::to_string(i));
  CHECK(counting.accepted == 2);
  CHECK(seen == std::vector<std::string>{"0", "1", "2", "3", "4"});
}
