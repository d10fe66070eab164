#include "framework/looping_call.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

TEST_CASE("looping_call_runs_now_and_every_interval") {
  ManualClock clock;
  std::vector<double> times;
  LoopingCall loop(clock, [&] { times.push_back(clock.seconds()); });
  auto done = loop.start(1.0);
  CHECK(times == std::vector<double>{0});
  clock.pump({0.5, 0.5, 1.0, 1.0});
  CHECK(times == std::vector<double>{0, 1, 2, 3});
  CHECK(loop.calls() == 4);
  CHECK(loop.missed() == 0);
  bool stopped = false;
  done.add_callback([&] { stopped = true; });
  loop.stop();
  CHECK(stopped);
  CHECK_FALSE(loop.running());
  clock.advance(5);
  CHECK(times.size() == 4);
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("looping_call_start_later") {
  ManualClock clock;
  int calls = 0;
  LoopingCall loop(clock, [&] { ++calls; });
  loop.start(2.0, false);
  CHECK(calls == 0);
  clock.advance(1.9);
  CHECK(calls == 0);
  clock.advance(0.1);
  CHECK(calls == 1);
  loop.stop();
}

TEST_CASE("looping_call_skips_and_counts_missed_intervals") {
  ManualClock clock;
  std::vector<std::uint64_t> counts;
  std::vector<double> times;
  LoopingCall loop(clock, [&](std::uint64_t n) {
    counts.push_back(n);
    times.push_back(clock.seconds());
  });
  loop.start(1.0);
  clock.jump(3.5);  // the loop was blocked: calls due at 1, 2, 3 collapse into one
  CHECK(counts == std::vector<std::uint64_t>{1, 3});
  CHECK(times == std::vector<double>{0, 3.5});
  CHECK(loop.missed() == 2);
  clock.advance(0.5);  // back on the grid: next call at 4, not 4.5
  CHECK(times.back() == 4.0);
  CHECK(counts.back() == 1);
  loop.stop();
}

TEST_CASE("looping_call_rejects_bad_intervals") {
  ManualClock clock;
  LoopingCall loop(clock, [] {});
  CHECK_THROWS_WITH_AS(loop.start(0), doctest::Contains("got 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(loop.start(-1.5), doctest::Contains("got -1.5"), std::invalid_argument);
  CHECK_THROWS_AS(loop.start(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  CHECK_FALSE(loop.running());
  loop.start(1);
  CHECK_THROWS_AS(loop.start(1), std::logic_error);
}

TEST_CASE("looping_call_exception_stops_and_fails_the_deferred") {
  ManualClock clock;
  int calls = 0;
  LoopingCall loop(clock, [&] {
    if (++calls == 3) throw std::runtime_error("third time");
  });
  std::string error;
  loop.start(1).add_errback([&](std::exception_ptr e) { error = describe_error(e); });
  clock.pump({1, 1, 1, 1});
  CHECK(calls == 3);
  CHECK(error == "third time");
  CHECK_FALSE(loop.running());
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("looping_call_stop_from_inside_and_restart") {
  ManualClock clock;
  int calls = 0;
  LoopingCall* self = nullptr;
  LoopingCall loop(clock, [&] {
    if (++calls == 2) self->stop();
  });
  self = &loop;
  loop.start(1);
  clock.pump({1, 1, 1});
  CHECK(calls == 2);
  CHECK(clock.pending_count() == 0);
  loop.start(0.5, false);
  clock.advance(0.5);
  CHECK(calls == 3);
  CHECK(loop.calls() == 1);
}

TEST_CASE("looping_call_on_the_reactor") {
  Reactor reactor;
  int calls = 0;
  LoopingCall loop(reactor, [&] { ++calls; });
  loop.start(0.005);
  torsion::test::wait_for(reactor, [&] { return calls >= 3; }, "three calls");
  loop.stop();
  CHECK(calls >= 3);
}

// --- functions that return a Deferred or a Task are waited for --------------------------

TEST_CASE("looping_call_waits_for_the_returned_deferred") {
  ManualClock clock;
  std::vector<double> times;
  std::vector<Deferred<void>> pending;
  LoopingCall loop(clock, [&] {
    times.push_back(clock.seconds());
    pending.emplace_back();
    return pending.back();
  });
  loop.start(1.0);
  CHECK(times == std::vector<double>{0});
  CHECK(loop.waiting());
  CHECK(loop.running());
  clock.pump({1, 1, 1});  // intervals pass; nothing is called while the Deferred is pending
  CHECK(times.size() == 1);
  CHECK(clock.pending_count() == 0);
  pending[0].callback();  // at 3 exactly: the next call is at the next boundary, 4
  CHECK_FALSE(loop.waiting());
  clock.advance(0.5);
  CHECK(times.size() == 1);
  clock.advance(0.5);
  CHECK(times == std::vector<double>{0, 4});
  clock.advance(0.25);
  pending[1].callback();  // quickly, within the interval: back to the grid at 5
  clock.advance(0.75);
  CHECK(times == std::vector<double>{0, 4, 5});
  CHECK(loop.calls() == 3);
  CHECK(loop.missed() == 3);  // 1, 2 and 3 passed while waiting
  loop.stop();
  CHECK_FALSE(loop.running());
  CHECK(loop.waiting());  // stop() does not cancel what the function returned
  pending[2].callback();
  CHECK_FALSE(loop.waiting());
}

TEST_CASE("looping_call_slow_deferred_skips_to_the_next_boundary_and_counts_missed") {
  ManualClock clock;
  std::vector<std::uint64_t> counts;
  std::vector<double> times;
  LoopingCall loop(clock, [&](std::uint64_t n) {
    counts.push_back(n);
    times.push_back(clock.seconds());
    return defer_later(clock, 2.5, [] {});  // slower than the interval
  });
  loop.start(1.0);
  clock.advance(10);
  // Called at 0; its Deferred fires at 2.5; the next boundary is 3, and the call hears the
  // three intervals since the last one (two skipped), as Twisted's withCount does.
  CHECK(times == std::vector<double>{0, 3, 6, 9});
  CHECK(counts == std::vector<std::uint64_t>{1, 3, 3, 3});
  CHECK(loop.missed() == 6);
  loop.stop();
  CHECK(clock.advance_to_next());  // the last Deferred fires at 11.5 ...
  CHECK(clock.seconds() == 11.5);
  CHECK_FALSE(clock.advance_to_next());  // ... and nothing is scheduled after it
  CHECK(times.size() == 4);
}

TEST_CASE("looping_call_deferred_firing_on_a_boundary_waits_for_the_next_one") {
  ManualClock clock;
  std::vector<double> times;
  LoopingCall loop(clock, [&] {
    times.push_back(clock.seconds());
    return defer_later(clock, 1.0, [] {});  // fires exactly on the next boundary
  });
  loop.start(1.0);
  clock.advance(6);
  // The boundary it fires on is already past when it fires: the next call is one later.
  CHECK(times == std::vector<double>{0, 2, 4, 6});
  CHECK(loop.missed() == 3);
  loop.stop();
  clock.advance(2);
}

TEST_CASE("looping_call_failed_deferred_stops_and_fails_start") {
  ManualClock clock;
  int calls = 0;
  LoopingCall loop(clock, [&]() -> Deferred<void> {
    if (++calls < 3) return succeed();
    return defer_later(clock, 0.5, [] { throw std::runtime_error("third time, later"); });
  });
  std::string error;
  bool succeeded = false;
  loop.start(1)
      .add_callback([&] { succeeded = true; })
      .add_errback([&](std::exception_ptr e) { error = describe_error(e); });
  clock.pump({1, 1});
  CHECK(calls == 3);
  CHECK(loop.running());
  CHECK(error.empty());
  clock.advance(0.5);
  CHECK(error == "third time, later");
  CHECK_FALSE(succeeded);
  CHECK_FALSE(loop.running());
  CHECK_FALSE(loop.waiting());
  CHECK(clock.pending_count() == 0);
  clock.advance(5);
  CHECK(calls == 3);
  // It can be started again.
  std::string again;
  loop.start(1).add_errback([&](std::exception_ptr e) { again = describe_error(e); });
  CHECK(calls == 4);
  loop.stop();
  clock.advance(0.5);  // the Deferred awaited when stopped fails: so does start()'s
  CHECK(again == "third time, later");
}

TEST_CASE("looping_call_function_throwing_instead_of_returning_a_deferred") {
  ManualClock clock;
  LoopingCall loop(clock, []() -> Deferred<void> { throw std::runtime_error("no Deferred"); });
  std::string error;
  loop.start(1).add_errback([&](std::exception_ptr e) { error = describe_error(e); });
  CHECK(error == "no Deferred");
  CHECK_FALSE(loop.running());
  CHECK_FALSE(loop.waiting());
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("looping_call_stop_while_waiting") {
  ManualClock clock;
  int calls = 0;
  Deferred<void> pending;
  LoopingCall loop(clock, [&] {
    ++calls;
    pending = Deferred<void>();
    return pending;
  });
  bool stopped = false;
  loop.start(1).add_callback([&] { stopped = true; });
  clock.advance(0.5);
  loop.stop();
  CHECK_FALSE(loop.running());
  CHECK(loop.waiting());
  CHECK_FALSE(stopped);  // start()'s Deferred waits for the function's, as in Twisted
  CHECK_THROWS_WITH_AS(loop.start(1), doctest::Contains("still waiting"), std::logic_error);
  pending.callback();
  CHECK(stopped);
  CHECK_FALSE(loop.waiting());
  clock.advance(10);
  CHECK(calls == 1);  // no further call
  CHECK(clock.pending_count() == 0);

  SUBCASE("a failure after stop() still fails start()'s Deferred") {
    std::string error;
    loop.start(1).add_errback([&](std::exception_ptr e) { error = describe_error(e); });
    CHECK(calls == 2);
    loop.stop();
    pending.errback(std::runtime_error("late failure"));
    CHECK(error == "late failure");
    CHECK_FALSE(loop.running());
  }
}

TEST_CASE("looping_call_stop_from_inside_a_deferred_function") {
  ManualClock clock;
  int calls = 0;
  LoopingCall* self = nullptr;
  Deferred<void> pending;
  LoopingCall loop(clock, [&] {
    if (++calls == 2) self->stop();
    pending = Deferred<void>();
    return pending;
  });
  self = &loop;
  bool stopped = false;
  loop.start(1).add_callback([&] { stopped = true; });
  pending.callback();
  clock.advance(1);
  CHECK(calls == 2);
  CHECK_FALSE(loop.running());
  CHECK_FALSE(stopped);  // stopped from inside: fires when the returned Deferred does
  pending.callback();
  CHECK(stopped);
  clock.advance(5);
  CHECK(calls == 2);
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("looping_call_destroyed_while_waiting") {
  ManualClock clock;
  Deferred<void> pending;
  std::string error;
  {
    LoopingCall loop(clock, [&] { return pending; });
    loop.start(1).add_errback([&](std::exception_ptr e) { error = describe_error(e); });
    CHECK(loop.waiting());
  }
  CHECK(clock.pending_count() == 0);
  pending.errback(std::runtime_error("after the loop was gone"));
  CHECK(error == "after the loop was gone");  // start()'s Deferred still hears it
}

TEST_CASE("looping_call_deferred_that_fires_synchronously") {
  ManualClock clock;
  std::vector<double> times;
  LoopingCall loop(clock, [&](std::uint64_t) {
    times.push_back(clock.seconds());
    return succeed();
  });
  loop.start(1);
  CHECK_FALSE(loop.waiting());
  clock.pump({1, 1, 1});
  CHECK(times == std::vector<double>{0, 1, 2, 3});  // as the void form
  CHECK(loop.missed() == 0);
  clock.jump(2.5);  // a late loop still collapses the missed calls into one
  CHECK(times.back() == 5.5);
  CHECK(loop.missed() == 1);
  loop.stop();

  LoopingCall failing(clock, [] { return fail<void>(std::runtime_error("at once")); });
  std::string error;
  failing.start(1).add_errback([&](std::exception_ptr e) { error = describe_error(e); });
  CHECK(error == "at once");  // inside start(), the first call being now
  CHECK_FALSE(failing.running());

  // A Deferred someone else chains on too: the loop's step goes to the end of its chain
  // (Deferreds chain in place, as in Twisted) and the loop waits for the whole chain.
  Deferred<void> shared;
  int others = 0;
  shared.add_callback([&] { ++others; });
  LoopingCall sharing(clock, [&] { return shared; });
  auto sharing_done = sharing.start(1);
  CHECK(sharing.running());
  CHECK(sharing.waiting());
  sharing.stop();
  shared.callback();
  CHECK(others == 1);  // the other step ran first, then the loop's
  CHECK_FALSE(sharing.waiting());
}

TEST_CASE("looping_call_with_a_coroutine") {
  ManualClock clock;
  std::vector<double> started, finished;
  LoopingCall loop(clock, [&]() -> Task<void> {
    started.push_back(clock.seconds());
    co_await sleep(clock, 0.25);
    finished.push_back(clock.seconds());
    if (finished.size() == 3) throw std::runtime_error("third task failed");
  });
  std::string error;
  loop.start(1).add_errback([&](std::exception_ptr e) { error = describe_error(e); });
  CHECK(started == std::vector<double>{0});
  CHECK(finished.empty());
  CHECK(loop.waiting());
  clock.advance(10);
  CHECK(started == std::vector<double>{0, 1, 2});
  CHECK(finished == std::vector<double>{0.25, 1.25, 2.25});
  CHECK(error == "third task failed");
  CHECK_FALSE(loop.running());

  SUBCASE("a slow coroutine") {
    std::vector<std::uint64_t> counts;
    LoopingCall slow(clock, [&](std::uint64_t n) -> Task<void> {
      counts.push_back(n);
      co_await sleep(clock, 1.5);
    });
    slow.start(1);
    clock.advance(5);
    CHECK(counts == std::vector<std::uint64_t>{1, 2, 2});  // at 10, 12, 14
    slow.stop();
    clock.advance(2);
    CHECK(counts.size() == 3);
    CHECK(clock.pending_count() == 0);
  }
  SUBCASE("destroyed while the coroutine is suspended: its captures stay valid") {
    int after = 0;
    bool done = false;
    {
      LoopingCall loop2(clock, [&, tag = std::string("captured")]() -> Task<void> {
        co_await sleep(clock, 0.5);
        after += static_cast<int>(tag.size());  // reads the lambda's own capture
      });
      loop2.start(1).add_callback([&] { done = true; });
    }
    clock.advance(1);
    CHECK(after == 8);
    CHECK(done);
  }
}
