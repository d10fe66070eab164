// Graceful shutdown and signal handling of Reactor (framework/reactor.hpp).
#include "framework/reactor.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "framework/listening_port.hpp"
#include "framework/task.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// Stops the reactor if a test hangs; the test then fails on `fired`.
struct Watchdog {
  bool fired = false;
  DelayedCall call;
  explicit Watchdog(Reactor& r) {
    call = r.call_later(torsion::test::kDeadline, [this, &r] {
      fired = true;
      r.stop();
    });
  }
  ~Watchdog() { call.cancel(); }
};

// A plain blocking client socket that never reads (outside the reactor's bookkeeping).
struct RawClient {
  int fd = -1;
  explicit RawClient(int port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~RawClient() { ::close(fd); }
};

}  // namespace

TEST_CASE("shutdown_closes_ports_then_connections_and_run_returns") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  std::vector<std::string> order;
  reactor.add_shutdown_trigger(ShutdownPhase::before, [&] {
    order.push_back(port->listening() ? "before: listening" : "before: closed");
    order.push_back("before: " + std::to_string(reactor.connection_count()) + " connections");
  });
  reactor.add_shutdown_trigger(ShutdownPhase::during, [&] {
    order.push_back(port->listening() ? "during: listening" : "during: closed");
  });
  reactor.add_shutdown_trigger(ShutdownPhase::after, [&] {
    order.push_back("after: " + std::to_string(reactor.connection_count()) + " connections");
  });
  // Shut down once both ends are up.
  std::function<void()> poll;
  poll = [&] {
    if (!server.records.empty() && !client.records.empty() && client.records[0].made)
      reactor.shutdown();
    else
      reactor.call_later(0.001, poll);
  };
  reactor.call_soon(poll);
  Watchdog watchdog(reactor);
  reactor.run();
  CHECK_FALSE(watchdog.fired);
  CHECK(order == std::vector<std::string>{"before: listening", "before: 2 connections",
                                          "during: closed", "after: 0 connections"});
  CHECK_FALSE(port->listening());
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].lost == 1);
  CHECK(client.records[0].reason->clean());
  CHECK(server.records[0].lost == 1);
  CHECK_FALSE(reactor.shutting_down());
}

TEST_CASE("sigterm_while_running_shuts_down_gracefully") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) { r.on_made = [](Record&) { std::raise(SIGTERM); }; };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  bool after = false;
  reactor.add_shutdown_trigger(ShutdownPhase::after, [&] { after = true; });
  Watchdog watchdog(reactor);
  reactor.run();  // returns by itself once the signal's shutdown is done
  CHECK_FALSE(watchdog.fired);
  CHECK(reactor.last_signal() == SIGTERM);
  CHECK(after);
  CHECK_FALSE(port->listening());
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].reason->clean());
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("sigint_while_running_shuts_down") {
  Reactor reactor;
  reactor.call_later(0.001, [] { std::raise(SIGINT); });
  Watchdog watchdog(reactor);
  reactor.run();
  CHECK_FALSE(watchdog.fired);
  CHECK(reactor.last_signal() == SIGINT);
}

namespace {
volatile std::sig_atomic_t own_handler_saw = 0;
extern "C" void own_handler(int) { own_handler_saw = 1; }
}  // namespace

TEST_CASE("signal_handling_opt_out_leaves_signals_alone") {
  struct sigaction mine {}, previous {};
  mine.sa_handler = own_handler;
  sigemptyset(&mine.sa_mask);
  REQUIRE(::sigaction(SIGTERM, &mine, &previous) == 0);
  own_handler_saw = 0;
  Reactor reactor;
  reactor.set_handle_signals(false);
  CHECK_FALSE(reactor.handle_signals());
  reactor.call_later(0.001, [] { std::raise(SIGTERM); });
  bool still_running = false;
  reactor.call_later(0.02, [&] {
    still_running = !reactor.shutting_down();
    reactor.stop();
  });
  reactor.run();
  CHECK(own_handler_saw == 1);
  CHECK(still_running);
  CHECK(reactor.last_signal() == 0);
  ::sigaction(SIGTERM, &previous, nullptr);
}

TEST_CASE("shutdown_waits_for_before_trigger_deferreds") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  std::vector<std::string> order;
  reactor.add_shutdown_trigger(ShutdownPhase::before, [&]() -> Deferred<void> {
    order.push_back("before starts");
    return defer_later(reactor, 0.02, [&] { order.push_back("before done"); });
  });
  reactor.add_shutdown_trigger(ShutdownPhase::during, [&] { order.push_back("during"); });
  reactor.shutdown();  // before run(): proceeds once run() starts
  CHECK(reactor.shutting_down());
  Watchdog watchdog(reactor);
  reactor.run();
  CHECK_FALSE(watchdog.fired);
  CHECK(order == std::vector<std::string>{"before starts", "before done", "during"});
}

TEST_CASE("shutdown_grace_then_abort_for_a_peer_that_does_not_read") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  reactor.set_shutdown_grace(0.1);
  RecordingFactory server;
  server.setup = [](Record& r) {
    // More than the kernel buffers hold, so lose_connection cannot finish.
    r.on_made = [](Record& rr) { rr.transport->write(std::string(64 * 1024 * 1024, 'q')); };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RawClient peer(port->port());
  wait_for(reactor, [&] { return !server.records.empty(); }, "the accept");
  const double start = reactor.seconds();
  reactor.shutdown();
  Watchdog watchdog(reactor);
  reactor.run();
  CHECK_FALSE(watchdog.fired);
  CHECK(reactor.seconds() - start >= 0.1);
  REQUIRE(server.records[0].lost == 1);
  CHECK(server.records[0].reason->is(error::connection_aborted));
}

TEST_CASE("second_signal_during_shutdown_stops_at_once") {
  Reactor reactor;
  Deferred<void> never;  // a before trigger that never finishes
  reactor.add_shutdown_trigger(ShutdownPhase::before, [&] { return never; });
  bool during = false;
  reactor.add_shutdown_trigger(ShutdownPhase::during, [&] { during = true; });
  reactor.call_later(0.001, [] { std::raise(SIGINT); });
  reactor.call_later(0.02, [] { std::raise(SIGINT); });
  Watchdog watchdog(reactor);
  reactor.run();
  CHECK_FALSE(watchdog.fired);
  CHECK_FALSE(during);
  CHECK_FALSE(reactor.shutting_down());
  never.callback();  // too late: the interrupted shutdown ignores it
  CHECK_FALSE(during);
}

TEST_CASE("shutdown_trigger_bookkeeping_and_bad_grace") {
  Reactor reactor;
  reactor.set_handle_signals(false);
  int calls = 0;
  const auto id = reactor.add_shutdown_trigger(ShutdownPhase::after, [&] { ++calls; });
  CHECK(reactor.remove_shutdown_trigger(id));
  CHECK_FALSE(reactor.remove_shutdown_trigger(id));
  reactor.add_shutdown_trigger(ShutdownPhase::before, []() { throw std::runtime_error("logged"); });
  reactor.shutdown();
  Watchdog watchdog(reactor);
  reactor.run();
  CHECK_FALSE(watchdog.fired);
  CHECK(calls == 0);
  CHECK_THROWS_WITH_AS(reactor.set_shutdown_grace(-2), doctest::Contains("-2"),
                       std::invalid_argument);
  // The reactor can run and shut down again.
  reactor.shutdown();
  reactor.run();
  CHECK_FALSE(watchdog.fired);
}
