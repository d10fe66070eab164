// Natural code that used to touch freed memory (issue 18's probes), each pinned down under
// AddressSanitizer: handles dropped, coroutine lambdas with captures, callbacks that
// outlive the protocol that registered them.
#include "framework/protocol.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/reconnecting.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// A port on 127.0.0.1 that refuses connections: one the kernel handed out, then closed.
int refusing_port(Reactor& reactor) {
  FunctionFactory<Factory> nobody([](const Address&) { return std::unique_ptr<Protocol>(); });
  auto port = listen_tcp(reactor, 0, nobody, loopback());
  const int number = port->port();
  port->stop_listening();
  return number;
}

Backoff fast_backoff() {
  Backoff b;
  b.initial_delay = 0.01;
  b.factor = 1;
  b.max_delay = 0.01;
  b.jitter = 0;
  return b;
}

}  // namespace

TEST_CASE("reconnecting goes on retrying after the handle connect_tcp returned is dropped") {
  Reactor reactor;
  const int port = refusing_port(reactor);
  ReconnectingClientFactory factory(
      reactor, [](const Address&) { return std::make_unique<Protocol>(); }, fast_backoff());
  int failures = 0;
  struct Counting : ClientFactory {
    ReconnectingClientFactory& inner;
    int& failures;
    Counting(ReconnectingClientFactory& i, int& f) : inner(i), failures(f) {}
    std::unique_ptr<Protocol> build_protocol(const Address& a) override {
      return inner.build_protocol(a);
    }
    void started_connecting(Connector& c) override { inner.started_connecting(c); }
    void client_connection_failed(Connector& c, const Reason& r) override {
      ++failures;
      inner.client_connection_failed(c, r);
    }
  } counting(factory, failures);

  SUBCASE("the handle is dropped at once, as examples/echo_client.cpp does") {
    connect_tcp(reactor, "127.0.0.1", port, counting);
    wait_for(reactor, [&] { return failures >= 4; }, "four refused attempts in a row");
  }
  SUBCASE("only a weak_ptr is kept") {
    std::weak_ptr<Connector> weak = connect_tcp(reactor, "127.0.0.1", port, counting);
    wait_for(reactor, [&] { return failures >= 4; }, "four refused attempts in a row");
    CHECK_FALSE(weak.expired());  // the pending retry holds it
    factory.stop_trying();
    CHECK_FALSE(factory.pending_retry().active());
    reactor.run_until([&] { return weak.expired(); }, test::kDeadline);
    CHECK(weak.expired());  // nothing uses it any more: freed, not leaked
  }
  CHECK(factory.retries() >= 3);
  factory.stop_trying();
}

TEST_CASE("a listening port whose handle is dropped keeps accepting") {
  Reactor reactor;
  int made = 0;
  struct Counter : Protocol {
    int& made;
    explicit Counter(int& m) : made(m) {}
    void connection_made() override {
      ++made;
      transport().lose_connection();
    }
  };
  FunctionFactory<Factory> factory([&](const Address&) { return std::make_unique<Counter>(made); });
  const int port = listen_tcp(reactor, 0, factory, loopback())->port();
  FunctionFactory<ClientFactory> client([](const Address&) { return std::make_unique<Protocol>(); });
  for (int i = 0; i < 2; ++i) connect_tcp(reactor, "127.0.0.1", port, client);
  wait_for(reactor, [&] { return made == 2; }, "both connections accepted");
  reactor.run_until([&] { return reactor.connection_count() == 0; }, test::kDeadline);
}

TEST_CASE("a coroutine handler given to StreamFactory keeps its captures across co_await") {
  Reactor reactor;
  const std::string prefix(64, 'p');  // long enough to live on the heap
  StreamFactory factory(reactor, [prefix](Stream s) -> Task<void> {
    auto line = co_await s.read_line();
    // The lambda object StreamFactory called is gone by now; its captures must not be.
    if (line) s.write(prefix + *line + "\n");
    co_await s.drain();
  });
  auto port = listen_tcp(reactor, 0, factory, loopback());

  std::optional<std::string> got;
  const std::string hello(48, 'h');
  // The client side is a coroutine lambda with captures too, given to add_callback.
  Deferred<void> done = connect_stream(reactor, "127.0.0.1", port->port())
                            .add_callback([&got, hello](Stream s) -> Task<void> {
                              s.write(hello + "\n");
                              got = co_await s.read_line();
                              if (got) *got += "|" + hello;  // a capture, after suspension
                            });
  wait_for(reactor, [&] { return done.called(); }, "the exchange");
  REQUIRE(got);
  CHECK(*got == prefix + hello + "|" + hello);
  port->stop_listening();
  reactor.run_until([&] { return reactor.connection_count() == 0; }, test::kDeadline);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("add_errback and add_both keep a coroutine callback's captures across co_await") {
  Reactor reactor;
  const std::string tail(40, 't');
  std::string seen;
  Deferred<int> failing;
  Deferred<void> recovered =
      failing
          .add_errback([&reactor, tail](std::exception_ptr) -> Task<int> {
            co_await sleep(reactor, 0.001);
            co_return static_cast<int>(tail.size());
          })
          .add_both([&seen, tail, &reactor](Outcome<int> o) -> Task<void> {
            co_await sleep(reactor, 0.001);
            seen = tail + std::to_string(o.value());
          });
  failing.errback(std::runtime_error("first"));
  wait_for(reactor, [&] { return recovered.called(); }, "the chain");
  CHECK(seen == tail + "40");
}

namespace {

// The finger tutorial (stage 09) the natural way: each request line is answered from a
// Deferred that fires later (a child process's output there; the test fires it here),
// and the answer closes the connection. A client that sends two lines gets the first
// answer; the connection is gone, and its protocol destroyed, before the second fires.
class Finger : public Protocol {
 public:
  Finger(std::vector<Deferred<std::string>>& lookups, int& answered, bool& destroyed)
      : lookups_(lookups), answered_(answered), destroyed_(destroyed) {}
  ~Finger() override { destroyed_ = true; }

  void data_received(std::string_view data) override {
    buffer_.append(data);
    for (auto nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n')) {
      buffer_.erase(0, nl + 1);
      Deferred<std::string> lookup;  // getProcessOutput(["finger", user]) in Twisted
      lookups_.push_back(lookup);
      lookup.add_callback(guard([this](std::string answer) {
        ++answered_;
        transport().write(answer);
        transport().lose_connection();
      }));
    }
  }

 private:
  std::vector<Deferred<std::string>>& lookups_;
  int& answered_;
  bool& destroyed_;
  std::string buffer_;
};

}  // namespace

TEST_CASE("finger: a Deferred callback guarded by its protocol never runs after the protocol is gone") {
  Reactor reactor;
  std::vector<Deferred<std::string>> lookups;
  int answered = 0;
  bool destroyed = false;
  FunctionFactory<Factory> factory(
      [&](const Address&) { return std::make_unique<Finger>(lookups, answered, destroyed); });
  auto port = listen_tcp(reactor, 0, factory, loopback());
  std::string received;
  bool closed = false;
  struct Client : Protocol {
    std::string& received;
    bool& closed;
    Client(std::string& r, bool& c) : received(r), closed(c) {}
    void connection_made() override { transport().write("first\nsecond\n"); }
    void data_received(std::string_view d) override { received.append(d); }
    void connection_lost(const Reason&) override { closed = true; }
  };
  FunctionFactory<ClientFactory> client(
      [&](const Address&) { return std::make_unique<Client>(received, closed); });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return lookups.size() == 2; }, "both requests");
  lookups[0].callback("no such user: first\n");
  wait_for(reactor, [&] { return closed && destroyed; }, "the close and the protocol's end");
  lookups[1].callback("no such user: second\n");  // its protocol is gone
  CHECK(received == "no such user: first\n");
  CHECK(answered == 1);
  port->stop_listening();
  reactor.run_until([&] { return reactor.connection_count() == 0; }, test::kDeadline);
}

TEST_CASE("guard: a value callback whose protocol is gone fails the chain with ProtocolGoneError") {
  Deferred<int> d;
  Deferred<int> next;
  {
    Protocol p;
    next = d.add_callback(p.guard([](int v) { return v + 1; }));
  }
  d.callback(1);
  bool gone = false;
  next.catch_error<ProtocolGoneError>([&](const ProtocolGoneError&) {
    gone = true;
    return 0;
  });
  CHECK(gone);
  Protocol alive;
  Deferred<int> e;
  int result = 0;
  e.add_callback(alive.guard([](int v) { return v * 2; })).add_callback([&](int v) {
    result = v;
  });
  e.callback(21);
  CHECK(result == 42);
}
