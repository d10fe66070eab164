// The testing page's snippets are doctest test cases themselves.
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/run_until.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/timeout.hpp"
#include "transports/tcp.hpp"

namespace docs {
namespace {

// [snippet:protocol-under-test]
// Answers each complete line "NAME\n" with "hello, NAME\n".
class Greeter : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override {
    buffer_.append(data);
    for (std::size_t nl; (nl = buffer_.find('\n')) != std::string::npos;) {
      transport().write("hello, " + buffer_.substr(0, nl + 1));
      buffer_.erase(0, nl + 1);
    }
  }

 private:
  std::string buffer_;
};
// [end]

// [snippet:heartbeat]
// Calls `ping` every `interval` seconds until stop(). Takes a Scheduler, not a Reactor,
// so that tests can drive it with a ManualClock.
class Heartbeat {
 public:
  Heartbeat(torsion::Scheduler& clock, double interval, std::function<void()> ping)
      : clock_(clock), interval_(interval), ping_(std::move(ping)) {}
  void start() { next_ = clock_.call_later(interval_, [this] { beat(); }); }
  void stop() { next_.cancel(); }

 private:
  void beat() {
    ping_();
    start();
  }
  torsion::Scheduler& clock_;
  double interval_;
  std::function<void()> ping_;
  torsion::DelayedCall next_;
};
// [end]

}  // namespace

// [snippet:string-transport-test]
TEST_CASE("greeter answers every line, whatever the chunking") {
  const std::string input = "ada\nalan\n";
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    torsion::testing::StringTransport transport;
    Greeter greeter;
    transport.connect(greeter);  // connection_made runs now
    for (std::size_t i = 0; i < input.size(); i += chunk)
      transport.receive(std::string_view(input).substr(i, chunk));  // as if read
    CHECK(transport.value() == "hello, ada\nhello, alan\n");
    transport.disconnect();  // connection_lost(clean)
  }
}
// [end]

// [snippet:manual-clock-test]
TEST_CASE("heartbeat pings every 10 seconds until stopped") {
  torsion::testing::ManualClock clock;
  int pings = 0;
  Heartbeat heartbeat(clock, 10, [&] { ++pings; });
  heartbeat.start();
  clock.advance(9.9);
  CHECK(pings == 0);
  clock.pump({0.1, 10, 10});  // no sleeping: time moves when the test says so
  CHECK(pings == 3);
  heartbeat.stop();
  clock.advance(100);
  CHECK(pings == 3);
  CHECK(clock.pending_count() == 0);
}
// [end]

// [snippet:factory-test]
TEST_CASE("a silent client of the greeter factory is aborted after 60 s") {
  torsion::testing::ManualClock clock;
  auto greeters = torsion::make_factory<Greeter>();
  torsion::TimeoutFactory idle(greeters, clock, 60);  // the factory a server would listen with
  auto protocol = idle.build_protocol(torsion::Address::ip("192.0.2.1", 40000));
  REQUIRE(protocol);  // null would mean: refused
  torsion::testing::StringTransport transport;
  transport.connect(*protocol);  // through the wrapper to the Greeter
  transport.receive("ada\n");
  CHECK(transport.value() == "hello, ada\n");
  clock.advance(59.9);
  CHECK_FALSE(transport.aborted());
  clock.advance(0.1);
  CHECK(transport.aborted());  // only recorded: the test ends the connection itself,
  transport.disconnect(torsion::Reason(torsion::error::connection_aborted));  // as TCP would
  CHECK(clock.pending_count() == 0);
}
// [end]

// [snippet:real-socket-test]
TEST_CASE("the greeter over TCP") {
  class Client : public torsion::Protocol {
   public:
    std::string got;
    void connection_made() override { transport().write("ada\n"); }
    void data_received(std::string_view data) override { got.append(data); }
  };
  Client* c = nullptr;  // the protocol the connector builds (the transport owns it)
  torsion::FunctionFactory<torsion::ClientFactory> one([&c](const torsion::Address&) {
    auto p = std::make_unique<Client>();
    c = p.get();
    return std::unique_ptr<torsion::Protocol>(std::move(p));
  });
  auto greeters = torsion::make_factory<Greeter>();
  torsion::Reactor reactor;  // after the factories, so destroyed before them
  torsion::TcpListenOptions loopback;
  loopback.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, greeters, loopback);  // 0: any free port
  auto connector = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), one);
  // Drives the loop until the condition holds; throws WaitTimeout naming it after 10 s.
  torsion::testing::run_until(reactor, [&] { return c && c->got == "hello, ada\n"; },
                              "the greeting", 10);
  connector->disconnect();
  torsion::testing::run_until(reactor, [&] { return reactor.connection_count() == 0; },
                              "both ends closed", 10);
}
// [end]

}  // namespace docs
