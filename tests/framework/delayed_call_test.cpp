#include "framework/delayed_call.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"

using torsion::DelayedCall;
using torsion::testing::ManualClock;

TEST_CASE("call_later fires at its time, not before") {
  ManualClock clock;
  int fired = 0;
  auto call = clock.call_later(1.5, [&] { ++fired; });
  CHECK(call.active());
  CHECK(call.time() == doctest::Approx(1.5));
  clock.advance(1.0);
  CHECK(fired == 0);
  clock.advance(0.5);
  CHECK(fired == 1);
  CHECK_FALSE(call.active());
  CHECK(call.called());
  clock.advance(10);
  CHECK(fired == 1);
}

TEST_CASE("equal_deadlines_fire_in_schedule_order") {
  ManualClock clock;
  std::string order;
  for (char c : std::string("abcdef")) clock.call_later(2, [&order, c] { order += c; });
  clock.call_later(1, [&] { order += '0'; });
  clock.advance(5);
  CHECK(order == "0abcdef");
}

TEST_CASE("chrono durations are accepted") {
  ManualClock clock;
  bool fired = false;
  clock.call_later(std::chrono::milliseconds(250), [&] { fired = true; });
  clock.advance(0.24);
  CHECK_FALSE(fired);
  clock.advance(0.01);
  CHECK(fired);
}

TEST_CASE("cancel_active_and_inactive") {
  ManualClock clock;
  int fired = 0;
  auto call = clock.call_later(1, [&] { ++fired; });
  CHECK(call.cancel());
  CHECK(call.cancelled());
  CHECK_FALSE(call.active());
  CHECK_FALSE(call.cancel());  // a second cancel is a harmless no-op that says so
  clock.advance(2);
  CHECK(fired == 0);

  auto done = clock.call_later(1, [&] { ++fired; });
  clock.advance(1);
  CHECK(fired == 1);
  CHECK_FALSE(done.cancel());  // already called
  CHECK(done.called());

  DelayedCall empty;
  CHECK_FALSE(empty.cancel());
  CHECK_FALSE(empty.active());
  CHECK_FALSE(empty.reset(1));
  CHECK_FALSE(empty.delay(1));
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("cancel releases the callback at once") {
  ManualClock clock;
  auto token = std::make_shared<int>(7);
  std::weak_ptr<int> weak = token;
  auto call = clock.call_later(1, [token] { (void)token; });
  token.reset();
  CHECK_FALSE(weak.expired());
  call.cancel();
  CHECK(weak.expired());
}

TEST_CASE("reset_and_delay_move_the_call") {
  ManualClock clock;
  int fired = 0;
  auto call = clock.call_later(1, [&] { ++fired; });
  clock.advance(0.5);
  CHECK(call.reset(2));  // now due at 2.5
  CHECK(call.time() == doctest::Approx(2.5));
  clock.advance(1.5);
  CHECK(fired == 0);
  CHECK(call.delay(1));  // now due at 3.5
  clock.advance(1);
  CHECK(fired == 0);
  CHECK(call.delay(-0.5));  // brought earlier, to 3.0: due now
  clock.advance(0);
  CHECK(fired == 1);
  CHECK_FALSE(call.reset(1));  // inactive: no-op
  CHECK_FALSE(call.delay(1));
  clock.advance(5);
  CHECK(fired == 1);
}

TEST_CASE("reset reorders among equal deadlines") {
  ManualClock clock;
  std::string order;
  auto a = clock.call_later(1, [&] { order += 'a'; });
  clock.call_later(1, [&] { order += 'b'; });
  a.reset(1);  // same time as b, but rescheduled later: runs after b
  clock.advance(1);
  CHECK(order == "ba");
}

TEST_CASE("bad delays are rejected with the value in the message") {
  ManualClock clock;
  CHECK_THROWS_WITH_AS(clock.call_later(-1, [] {}), doctest::Contains("-1"),
                       std::invalid_argument);
  CHECK_THROWS_AS(clock.call_later(std::nan(""), [] {}), std::invalid_argument);
  CHECK_THROWS_AS(clock.call_later(1, nullptr), std::invalid_argument);
  auto call = clock.call_later(1, [] {});
  CHECK_THROWS_AS(call.reset(-2), std::invalid_argument);
  CHECK_THROWS_AS(clock.advance(-1), std::invalid_argument);
  CHECK(call.active());
}

TEST_CASE("callbacks_that_schedule_and_cancel_while_firing") {
  ManualClock clock;
  std::vector<std::string> log;
  DelayedCall victim;
  clock.call_later(1, [&] {
    log.push_back("first");
    victim.cancel();                                         // cancel a call due now
    clock.call_later(0, [&] { log.push_back("zero"); });     // due now: runs this advance
    clock.call_later(1, [&] { log.push_back("later"); });    // due at 2
  });
  victim = clock.call_later(1, [&] { log.push_back("victim"); });
  clock.call_later(1, [&] { log.push_back("second"); });
  clock.advance(1);
  CHECK(log == std::vector<std::string>{"first", "second", "zero"});
  clock.advance(1);
  CHECK(log.back() == "later");
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("a call that resets itself while firing is not active") {
  ManualClock clock;
  DelayedCall self;
  bool reset_result = true;
  self = clock.call_later(1, [&] { reset_result = self.reset(1); });
  clock.advance(1);
  CHECK_FALSE(reset_result);
  CHECK(self.called());
}

TEST_CASE("an exception in a delayed call is logged and the others still run") {
  ManualClock clock;
  std::vector<std::string> seen;
  torsion::set_log_sink([&](torsion::LogLevel, std::string_view m) { seen.emplace_back(m); });
  int fired = 0;
  clock.call_later(1, [] { throw std::runtime_error("boom"); });
  clock.call_later(1, [&] { ++fired; });
  clock.advance(1);
  torsion::set_log_sink(nullptr);
  CHECK(fired == 1);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].find("boom") != std::string::npos);
}

TEST_CASE("pending_calls lists calls in firing order") {
  ManualClock clock;
  clock.call_later(3, [] {});
  auto first = clock.call_later(1, [] {});
  clock.call_later(2, [] {});
  auto pending = clock.pending_calls();
  REQUIRE(pending.size() == 3);
  CHECK(pending[0].time() == doctest::Approx(1));
  CHECK(pending[1].time() == doctest::Approx(2));
  CHECK(pending[2].time() == doctest::Approx(3));
  first.cancel();
  CHECK(clock.pending_calls().size() == 2);
}

TEST_CASE("many timers with random cancels fire in order") {
  ManualClock clock;
  std::vector<double> fired;
  std::vector<DelayedCall> calls;
  unsigned seed = 12345;
  auto next = [&] { seed = seed * 1103515245u + 12345u; return (seed >> 8) % 1000; };
  for (int i = 0; i < 2000; ++i) {
    const double t = next() / 100.0;
    calls.push_back(clock.call_later(t, [&fired, &clock] { fired.push_back(clock.seconds()); }));
  }
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < calls.size(); i += 3) cancelled += calls[i].cancel() ? 1u : 0u;
  for (int step = 0; step < 1000; ++step) clock.advance(0.01);
  CHECK(fired.size() == calls.size() - cancelled);
  for (std::size_t i = 1; i < fired.size(); ++i) CHECK(fired[i - 1] <= fired[i]);
}

TEST_CASE("handle copies and moves share one call; self-assignment keeps it") {
  ManualClock clock;
  int fired = 0;
  DelayedCall a = clock.call_later(1, [&] { ++fired; });
  DelayedCall b = a;              // copy
  DelayedCall c = std::move(b);   // move: b is empty now
  CHECK_FALSE(b.active());        // NOLINT(bugprone-use-after-move): empty by contract
  CHECK(c.active());
  DelayedCall& alias = a;
  a = alias;                      // self copy-assignment
  a = std::move(alias);           // self move-assignment
  CHECK(a.active());
  {
    DelayedCall d = a;
    d = DelayedCall();            // dropping a handle does not cancel the call
  }
  CHECK(c.cancel());
  CHECK(a.cancelled());
  CHECK_FALSE(a.cancel());
  clock.advance(2);
  CHECK(fired == 0);
}

TEST_CASE("dropping every handle leaves the call pending; it still fires") {
  ManualClock clock;
  int fired = 0;
  clock.call_later(1, [&] { ++fired; });
  { auto h = clock.call_later(2, [&] { ++fired; }); }
  CHECK(clock.pending_count() == 2);
  clock.advance(2);
  CHECK(fired == 2);
}

TEST_CASE("cancel after fire is a no-op, and time() stays the due time") {
  ManualClock clock;
  auto call = clock.call_later(1.25, [] {});
  clock.advance(2);
  CHECK(call.called());
  CHECK_FALSE(call.cancelled());
  CHECK_FALSE(call.cancel());
  CHECK_FALSE(call.cancelled());
  CHECK(call.time() == doctest::Approx(1.25));
}

// The callback owns the only handle to its own call: cancelling through that handle
// destroys the callback, and with it the handle whose cancel() is running.
TEST_CASE("cancel_destroys_the_handle_it_was_called_on") {
  ManualClock clock;
  auto holder = std::make_shared<DelayedCall>();
  std::weak_ptr<DelayedCall> weak = holder;
  *holder = clock.call_later(1, [holder] { (void)holder; });
  DelayedCall* raw = holder.get();
  holder.reset();  // the callback's capture is now the only owner of the handle
  CHECK_FALSE(weak.expired());
  CHECK(raw->cancel());
  CHECK(weak.expired());
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("a callback destroyed with its scheduler may touch other calls") {
  DelayedCall other;
  DelayedCall mine;
  struct OnDestroy {
    DelayedCall* other;
    bool* was_active;
    ~OnDestroy() {
      if (other) *was_active = other->active() || other->cancel();
    }
  };
  bool was_active = true;
  {
    ManualClock clock;
    other = clock.call_later(5, [] {});
    auto guard = std::make_shared<OnDestroy>(OnDestroy{&other, &was_active});
    mine = clock.call_later(1, [guard] { (void)guard; });
  }
  CHECK_FALSE(was_active);  // the dying scheduler's calls are all finished, none half-removed
  CHECK(other.cancelled());
  CHECK(mine.cancelled());
  CHECK_FALSE(mine.active());
  CHECK(mine.time() == doctest::Approx(1));
}

TEST_CASE("handles outlive a real reactor harmlessly") {
  DelayedCall call;
  {
    torsion::Reactor reactor;
    call = reactor.call_later(10, [] {});
    CHECK(call.active());
  }
  CHECK_FALSE(call.active());
  CHECK_FALSE(call.cancel());
  CHECK_FALSE(call.reset(1));
  CHECK_FALSE(call.delay(1));
}

TEST_CASE("a pending call costs at most 32 bytes beyond its std::function") {
  CHECK(sizeof(torsion::detail::TimerNode) <= sizeof(std::function<void()>) + 32);
  CHECK(sizeof(DelayedCall) == sizeof(void*));
}

TEST_CASE("ScopedDelayedCall cancels its call when destroyed or assigned over") {
  ManualClock clock;
  int fired = 0;
  {
    torsion::ScopedDelayedCall scoped = clock.call_later(1, [&] { ++fired; });
    CHECK(scoped.active());
    CHECK(scoped.time() == doctest::Approx(1));
  }
  clock.advance(2);
  CHECK(fired == 0);  // the handle's end cancelled it

  torsion::ScopedDelayedCall replaced = clock.call_later(1, [&] { fired += 10; });
  replaced = clock.call_later(1, [&] { fired += 100; });  // the first is cancelled
  clock.advance(1);
  CHECK(fired == 100);
  CHECK(replaced.called());

  DelayedCall kept;
  {
    torsion::ScopedDelayedCall scoped = clock.call_later(1, [&] { fired += 1000; });
    kept = scoped.release();  // given up: stays pending as a plain DelayedCall
  }
  CHECK(kept.active());
  clock.advance(1);
  CHECK(fired == 1100);

  struct Owner {  // the use it is for: a member timer that must die with its owner
    torsion::ScopedDelayedCall timeout;
  };
  auto owner = std::make_unique<Owner>();
  int* counter = &fired;
  owner->timeout = clock.call_later(1, [counter] { ++*counter; });
  owner.reset();
  clock.advance(1);
  CHECK(fired == 1100);
}
