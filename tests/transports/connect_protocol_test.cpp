// connect_protocol (Twisted's connectProtocol): a protocol instance instead of a
// ClientFactory subclass, over TCP, Unix and endpoint strings, as a Deferred and in a
// coroutine; failures carry the Reason.
#include <doctest/doctest.h>
#include <unistd.h>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::settle;
using torsion::test::wait_for;

namespace {

struct Echo : Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

// Says hello on connection_made and records what comes back.
struct Hello : Protocol {
  std::string heard;
  bool made = false;
  bool* lost = nullptr;
  void connection_made() override {
    made = true;
    transport().write("hello");
  }
  void data_received(std::string_view data) override { heard.append(data); }
  void connection_lost(const Reason&) override {
    if (lost) *lost = true;
  }
};

// A port on 127.0.0.1 where nothing listens any more.
int refusing_port(Reactor& reactor) {
  auto nobody = make_factory<Echo>();
  auto port = listen_tcp(reactor, 0, nobody, loopback());
  const int number = port->port();
  port->stop_listening();
  return number;
}

Task<std::string> hello_from(Reactor& reactor, std::string description) {
  Hello& hello = co_await connect_protocol(reactor, description, std::make_unique<Hello>());
  REQUIRE(hello.made);  // it fires after connection_made
  co_await sleep(reactor, 0);
  while (hello.heard.size() < 5) co_await sleep(reactor, 0.001);
  std::string heard = hello.heard;
  hello.transport().lose_connection();
  co_return heard;
}

}  // namespace

TEST_CASE("connect_protocol over TCP: fires with the protocol after connection_made") {
  Reactor reactor;
  auto echo = make_factory<Echo>();
  auto port = listen_tcp(reactor, 0, echo, loopback());
  auto endpoint = client_from_string(reactor, "tcp:127.0.0.1:" + std::to_string(port->port()));
  Hello* got = nullptr;
  bool lost = false;
  auto protocol = std::make_unique<Hello>();
  protocol->lost = &lost;
  auto d = connect_protocol(reactor, *endpoint, std::move(protocol));
  endpoint.reset();  // used during the call only
  std::move(d).add_callback([&](Hello& hello) {
    CHECK(hello.made);
    CHECK(hello.has_transport());
    got = &hello;
  });
  wait_for(
      reactor, [&] { return got != nullptr; }, "the Deferred");
  wait_for(
      reactor, [&] { return got->heard == "hello"; }, "the echo");
  got->transport().lose_connection();
  wait_for(
      reactor, [&] { return lost; }, "the connection ends");
  wait_for(
      reactor, [&] { return reactor.connection_count() == 0; }, "nothing left open");
}

TEST_CASE("connect_protocol from a coroutine, over TCP and a Unix socket") {
  Reactor reactor;
  auto echo = make_factory<Echo>();
  std::string description;
  SUBCASE("tcp") {
    auto port = listen_tcp(reactor, 0, echo, loopback());
    description = "tcp:127.0.0.1:" + std::to_string(port->port());
  }
  SUBCASE("unix") {
    const std::string path = "@torsion-connect-protocol-" + std::to_string(::getpid());
    listen_unix(reactor, path, echo);
    description = "unix:" + path;
  }
  auto task = hello_from(reactor, description);
  std::optional<std::string> heard;
  std::move(task).deferred().add_callback([&](std::string s) { heard = s; });
  wait_for(
      reactor, [&] { return heard.has_value(); }, "the coroutine");
  CHECK(*heard == "hello");
}

TEST_CASE("connect_protocol fails with the attempt's Reason") {
  Reactor reactor;
  const int port = refusing_port(reactor);
  std::optional<Reason> why;
  auto d =
      connect_protocol(reactor, "tcp:127.0.0.1:" + std::to_string(port), std::make_unique<Hello>());
  std::move(d).add_both([&](Outcome<std::reference_wrapper<Hello>> o) {
    try {
      o.value();
    } catch (const ConnectionError& error) {
      why = error.reason();
    }
  });
  wait_for(
      reactor, [&] { return why.has_value(); }, "the failure");
  CHECK(why->is(error::connection_refused));
}

TEST_CASE("cancelling connect_protocol stops the attempt") {
  Reactor reactor;
  auto echo = make_factory<Echo>();
  auto port = listen_tcp(reactor, 0, echo, loopback());
  auto d = connect_protocol(reactor, "tcp:127.0.0.1:" + std::to_string(port->port()),
                            std::make_unique<Hello>());
  bool cancelled = false;
  d.cancel();
  std::move(d).add_both([&](Outcome<std::reference_wrapper<Hello>> o) {
    cancelled = error_is<CancelledError>(o.error());
  });
  CHECK(cancelled);
  // Nothing is left connecting or connected.
  settle(reactor);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("connect_protocol: a connection that ends before the Deferred fires fails it") {
  Reactor reactor;
  struct Closing : Protocol {
    void connection_made() override { transport().abort_connection(); }
  };
  auto echo = make_factory<Echo>();
  auto port = listen_tcp(reactor, 0, echo, loopback());
  std::optional<bool> failed;
  auto d = connect_protocol(reactor, "tcp:127.0.0.1:" + std::to_string(port->port()),
                            std::make_unique<Closing>());
  std::move(d).add_both([&](Outcome<std::reference_wrapper<Closing>> o) { failed = !o.ok(); });
  wait_for(
      reactor, [&] { return failed.has_value(); }, "the outcome");
  CHECK(*failed);
}

TEST_CASE("connect_protocol: the Deferred may be dropped; the connection goes on") {
  Reactor reactor;
  auto echo = make_factory<Echo>();
  auto port = listen_tcp(reactor, 0, echo, loopback());
  bool lost = false;
  auto protocol = std::make_unique<Hello>();
  Hello* hello = protocol.get();
  protocol->lost = &lost;
  // Discarded: the protocol (owned by its connection) is still connected and served.
  (void)connect_protocol(reactor, "tcp:127.0.0.1:" + std::to_string(port->port()),
                         std::move(protocol));
  wait_for(reactor, [&] { return hello->made && hello->heard == "hello"; }, "the echo");
  hello->transport().lose_connection();
  wait_for(reactor, [&] { return lost && reactor.connection_count() == 0; }, "the close");
}

TEST_CASE("connect_protocol: the reactor destroyed with an attempt pending and a connection open") {
  // Under ASan: the one-off factories and the protocols go with their connections, and a
  // Deferred still held fails or stays as it was; nothing touches freed memory.
  std::optional<Deferred<std::reference_wrapper<Hello>>> open, pending;
  Hello* connected = nullptr;
  {
    Reactor reactor;
    auto echo = make_factory<Echo>();
    auto port = listen_tcp(reactor, 0, echo, loopback());
    const std::string where = "tcp:127.0.0.1:" + std::to_string(port->port());
    open = connect_protocol(reactor, where, std::make_unique<Hello>())
               .add_callback([&](Hello& h) {
                 connected = &h;
                 return std::ref(h);
               });
    wait_for(reactor, [&] { return connected && connected->heard == "hello"; }, "the echo");
    pending = connect_protocol(reactor, where, std::make_unique<Hello>());
    CHECK_FALSE(pending->called());
  }
  CHECK(open->called());
  if (pending->called()) {  // fired as the reactor went (failed), or never: both defined
    bool failed = false;
    pending->add_both([&](Outcome<std::reference_wrapper<Hello>> o) { failed = !o.ok(); });
    CHECK(failed);
  }
}

TEST_CASE("connect_protocol: a bad description throws EndpointError; a null protocol is refused") {
  Reactor reactor;
  CHECK_THROWS_AS((void)connect_protocol(reactor, "tcp:", std::make_unique<Hello>()),
                  EndpointError);
  CHECK_THROWS_AS((void)connect_protocol(reactor, "tcp:127.0.0.1:1", std::unique_ptr<Hello>()),
                  std::invalid_argument);
  CHECK(reactor.connection_count() == 0);
}
