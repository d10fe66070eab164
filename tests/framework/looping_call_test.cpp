#include "framework/looping_call.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
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
