// The testing page's snippets are doctest test cases themselves.
#include <doctest/doctest.h>

#include <functional>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"

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
      greeter.data_received(std::string_view(input).substr(i, chunk));
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

}  // namespace docs
