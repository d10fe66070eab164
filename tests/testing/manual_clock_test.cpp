#include "framework/testing/manual_clock.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using torsion::DelayedCall;
using torsion::Scheduler;
using torsion::testing::ManualClock;

namespace {

// A minimal looping call built on Scheduler only, as user code (time-outs, heartbeats)
// would be: it runs `fn` every `interval` seconds until stopped.
class Every {
 public:
  Every(Scheduler& s, double interval, std::function<void()> fn)
      : s_(s), interval_(interval), fn_(std::move(fn)) {
    arm();
  }
  void stop() { call_.cancel(); }

 private:
  void arm() {
    call_ = s_.call_later(interval_, [this] {
      fn_();
      arm();
    });
  }
  Scheduler& s_;
  double interval_;
  std::function<void()> fn_;
  DelayedCall call_;
};

}  // namespace

TEST_CASE("time starts at zero and moves only when told") {
  ManualClock clock;
  CHECK(clock.seconds() == 0);
  CHECK(clock.pending_count() == 0);
  CHECK_FALSE(clock.next_deadline());
  clock.advance(2.5);
  CHECK(clock.seconds() == doctest::Approx(2.5));
  clock.pump({1, 1, 0.5});
  CHECK(clock.seconds() == doctest::Approx(5));
}

TEST_CASE("advance_stops_at_each_deadline: callbacks see the time they were due") {
  ManualClock clock;
  std::vector<double> seen;
  clock.call_later(1, [&] {
    seen.push_back(clock.seconds());
    clock.call_later(1, [&] { seen.push_back(clock.seconds()); });  // due at 2: runs too
  });
  clock.call_later(3, [&] { seen.push_back(clock.seconds()); });
  clock.advance(10);
  CHECK(seen == std::vector<double>{1, 2, 3});
  CHECK(clock.seconds() == doctest::Approx(10));
}

TEST_CASE("a looping call fires once per interval within one advance") {
  ManualClock clock;
  std::vector<double> ticks;
  Every every(clock, 1, [&] { ticks.push_back(clock.seconds()); });
  clock.advance(10);
  CHECK(ticks.size() == 10);
  CHECK(ticks.front() == doctest::Approx(1));
  CHECK(ticks.back() == doctest::Approx(10));
  every.stop();
  clock.advance(10);
  CHECK(ticks.size() == 10);
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("jump models a late reactor: overdue calls all see the new time") {
  ManualClock clock;
  std::vector<double> seen;
  clock.call_later(1, [&] {
    seen.push_back(clock.seconds());
    clock.call_later(1, [&] { seen.push_back(clock.seconds()); });  // due at 11: waits
  });
  clock.call_later(3, [&] { seen.push_back(clock.seconds()); });
  clock.jump(10);
  CHECK(seen == std::vector<double>{10, 10});
  CHECK(clock.next_deadline() == doctest::Approx(11));
  CHECK_THROWS_AS(clock.jump(-1), std::invalid_argument);
}

TEST_CASE("advance_to_next runs the earliest call and reports an empty clock") {
  ManualClock clock;
  CHECK_FALSE(clock.advance_to_next());
  CHECK(clock.seconds() == 0);
  std::string order;
  clock.call_later(5, [&] { order += 'b'; });
  clock.call_later(2, [&] { order += 'a'; });
  CHECK(clock.advance_to_next());
  CHECK(order == "a");
  CHECK(clock.seconds() == doctest::Approx(2));
  CHECK(clock.advance_to_next());
  CHECK(order == "ab");
  CHECK_FALSE(clock.advance_to_next());
}

TEST_CASE("zero-delay calls made while advancing run in the same advance") {
  ManualClock clock;
  int depth = 0;
  std::function<void()> chain = [&] {
    if (++depth < 5) clock.call_later(0, chain);
  };
  clock.call_later(0, chain);
  clock.advance(0);
  CHECK(depth == 5);
  CHECK(clock.seconds() == 0);
}

TEST_CASE("a call delayed into the past is overdue, and time never goes back") {
  ManualClock clock;
  clock.advance(5);
  double at = -1;
  auto call = clock.call_later(2, [&] { at = clock.seconds(); });
  call.delay(-3);  // due at 4, already past
  CHECK(clock.next_deadline() == doctest::Approx(4));
  clock.advance(1);
  CHECK(at == doctest::Approx(5));  // ran at the first moment it could
  CHECK(clock.seconds() == doctest::Approx(6));
}

TEST_CASE("pending calls are inspectable and cancellable") {
  ManualClock clock;
  auto a = clock.call_later(3, [] {});
  auto b = clock.call_later(1, [] {});
  CHECK(clock.pending_count() == 2);
  CHECK(clock.next_deadline() == doctest::Approx(1));
  auto pending = clock.pending_calls();
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].time() == doctest::Approx(1));
  pending[0].cancel();
  CHECK_FALSE(b.active());
  CHECK(clock.pending_count() == 1);
  CHECK(clock.next_deadline() == doctest::Approx(3));
}

TEST_CASE("bad amounts are rejected with the value in the message") {
  ManualClock clock;
  CHECK_THROWS_WITH_AS(clock.advance(-0.5), doctest::Contains("-0.5"), std::invalid_argument);
  CHECK_THROWS_AS(clock.advance(std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(clock.advance(std::numeric_limits<double>::infinity()), std::invalid_argument);
  CHECK(clock.seconds() == 0);
}

TEST_CASE("handles outlive the clock harmlessly") {
  DelayedCall call;
  {
    ManualClock clock;
    call = clock.call_later(1, [] {});
  }
  CHECK_FALSE(call.active());
  CHECK_FALSE(call.cancel());
  CHECK_FALSE(call.reset(1));
}
