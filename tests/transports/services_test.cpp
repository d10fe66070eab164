// ListenService and ClientService on real sockets (127.0.0.1, port 0); ClientService's
// retry timing on the manual clock; a MultiService with both under start_application.
#include "transports/services.hpp"

#include <doctest/doctest.h>

#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/stream.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;
using torsion::testing::ManualClock;

namespace {

struct Echo : Protocol {
  void data_received(std::string_view data) override { transport().write(data); }
};

// A client protocol that counts what it hears.
struct Counter : Protocol {
  std::string heard;
  void data_received(std::string_view data) override { heard.append(data); }
};

Backoff exact(double initial) {
  Backoff b;
  b.initial_delay = initial;
  b.factor = 2;
  b.max_delay = 100;
  b.jitter = 0;
  return b;
}

std::string tcp_to(int port) { return "tcp:127.0.0.1:" + std::to_string(port); }

// A port number where nothing listens: one the kernel handed out, then closed.
int closed_port(Reactor& reactor) {
  auto nobody = make_factory<Echo>();
  auto port = listen_tcp(reactor, 0, nobody, loopback());
  const int number = port->port();
  port->stop_listening();
  return number;
}

}  // namespace

TEST_CASE("ListenService listens while running; ClientService connects and when_connected fires") {
  Reactor reactor;
  auto echo = make_factory<Echo>();
  ListenService server(reactor, "tcp:0:interface=127.0.0.1", echo);
  CHECK(server.port() == nullptr);
  server.start_service();
  REQUIRE(server.port());
  CHECK(server.port()->listening());

  auto counters = make_factory<Counter>();
  ClientService client(reactor, tcp_to(server.port()->port()), counters);
  Protocol* got = nullptr;
  client.when_connected().add_callback([&](Protocol* p) { got = p; });
  client.start_service();
  wait_for(
      reactor, [&] { return got != nullptr; }, "when_connected");
  CHECK(client.current() == got);
  got->transport().write("ping");
  wait_for(
      reactor, [&] { return static_cast<Counter*>(got)->heard == "ping"; }, "the echo");

  // A second request is answered with the same connection.
  Protocol* again = nullptr;
  client.when_connected().add_callback([&](Protocol* p) { again = p; });
  wait_for(
      reactor, [&] { return again != nullptr; }, "the second when_connected");
  CHECK(again == got);

  bool stopped = false;
  client.stop_service().add_callback([&] { stopped = true; });
  wait_for(
      reactor, [&] { return stopped; }, "the client's stop");
  CHECK(client.current() == nullptr);
  CHECK_FALSE(client.pending_retry().active());  // stopped: no retry

  bool server_stopped = false;
  server.stop_service().add_callback([&] { server_stopped = true; });
  CHECK(server_stopped);
  CHECK(server.port() == nullptr);
}

TEST_CASE("ClientService retries with backoff on the manual clock, then connects") {
  Reactor reactor;
  ManualClock clock;
  const int number = closed_port(reactor);
  auto counters = make_factory<Counter>();
  ClientServiceOptions options;
  options.backoff = exact(1);
  options.clock = &clock;
  ClientService client(reactor, tcp_to(number), counters, options);
  Protocol* got = nullptr;
  client.when_connected().add_callback([&](Protocol* p) { got = p; });
  client.start_service();

  wait_for(
      reactor, [&] { return client.pending_retry().active(); }, "the first refusal");
  CHECK(client.retries() == 1);
  CHECK(client.pending_retry().time() == doctest::Approx(1.0));
  clock.advance(0.5);
  CHECK(client.pending_retry().active());  // not yet
  clock.advance(0.5);                      // 1 s: the second attempt
  wait_for(
      reactor, [&] { return client.retries() == 2 && client.pending_retry().active(); },
      "the second refusal");
  CHECK(client.pending_retry().time() == doctest::Approx(1.0 + 2.0));  // doubled

  // Something listens there now: the next attempt connects and resets the backoff.
  auto echo = make_factory<Echo>();
  TcpListenOptions same = loopback();
  auto port = listen_tcp(reactor, number, echo, same);
  clock.advance(2);
  wait_for(
      reactor, [&] { return got != nullptr; }, "the connection after the retries");
  CHECK(client.retries() == 0);
  CHECK(got == client.current());

  // The server drops it: the service reconnects after initial_delay again.
  got->transport().abort_connection();
  wait_for(
      reactor, [&] { return client.pending_retry().active(); }, "the retry after the loss");
  CHECK(client.current() == nullptr);
  CHECK(client.pending_retry().time() == doctest::Approx(clock.seconds() + 1.0));
  Protocol* second = nullptr;
  client.when_connected().add_callback([&](Protocol* p) { second = p; });
  clock.advance(1);
  wait_for(
      reactor, [&] { return second != nullptr; }, "the reconnection");
  CHECK(client.current() == second);
}

TEST_CASE("ClientService: stop cancels the pending retry and fails when_connected") {
  Reactor reactor;
  ManualClock clock;
  auto counters = make_factory<Counter>();
  ClientServiceOptions options;
  options.backoff = exact(5);
  options.clock = &clock;
  ClientService client(reactor, tcp_to(closed_port(reactor)), counters, options);
  client.start_service();
  wait_for(
      reactor, [&] { return client.pending_retry().active(); }, "the refusal");
  bool cancelled = false;
  client.when_connected().add_errback([&](std::exception_ptr e) -> Protocol* {
    cancelled = error_is<CancelledError>(e);
    return nullptr;
  });
  bool stopped = false;
  client.stop_service().add_callback([&] { stopped = true; });
  CHECK(stopped);
  CHECK(cancelled);
  CHECK_FALSE(client.pending_retry().active());
  clock.advance(60);
  reactor.run_until([] { return false; }, 0.05);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("ClientService gives up after max_retries: when_connected fails with the reason") {
  Reactor reactor;
  ManualClock clock;
  auto counters = make_factory<Counter>();
  ClientServiceOptions options;
  options.backoff = exact(1);
  options.backoff.max_retries = 1;
  options.clock = &clock;
  ClientService client(reactor, tcp_to(closed_port(reactor)), counters, options);
  std::optional<Reason> why;
  client.when_connected().add_errback([&](std::exception_ptr e) -> Protocol* {
    try {
      std::rethrow_exception(e);
    } catch (const ConnectionError& error) {
      why = error.reason();
    }
    return nullptr;
  });
  client.start_service();
  wait_for(
      reactor, [&] { return client.pending_retry().active(); }, "the first refusal");
  clock.advance(1);
  wait_for(
      reactor, [&] { return why.has_value(); }, "giving up");
  CHECK(why->is(error::connection_refused));
  CHECK_FALSE(client.pending_retry().active());
}

TEST_CASE("a MultiService with a ListenService and a ClientService, stopped by shutdown") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  auto echo = make_factory<Echo>();
  auto counters = make_factory<Counter>();
  auto app = std::make_shared<MultiService>();
  auto& server =
      app->add_service(std::make_shared<ListenService>(reactor, "tcp:0:interface=127.0.0.1", echo));
  start_application(reactor, app);
  REQUIRE(server.port());
  auto& client = app->add_service(
      std::make_shared<ClientService>(reactor, tcp_to(server.port()->port()), counters));
  CHECK(client.running());  // added to a running MultiService: started
  Protocol* got = nullptr;
  client.when_connected().add_callback([&](Protocol* p) { got = p; });
  wait_for(
      reactor, [&] { return got != nullptr; }, "the client's connection");
  REQUIRE(reactor.connection_count() == 2);

  // The shutdown stops the services first (the client closes its connection, the port
  // stops listening), then drains what is left.
  reactor.call_soon([&] { reactor.shutdown(); });
  reactor.run();
  CHECK_FALSE(app->running());
  CHECK_FALSE(client.running());
  CHECK(server.port() == nullptr);
  CHECK(reactor.connection_count() == 0);
}
