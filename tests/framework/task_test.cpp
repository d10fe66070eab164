#include "framework/task.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

namespace {

Task<int> add_later(Deferred<int> a, Deferred<int> b) {
  const int x = co_await a;
  const int y = co_await b;
  co_return x + y;
}

Task<std::string> sleepy(ManualClock& clock, std::vector<double>& times) {
  times.push_back(clock.seconds());
  co_await sleep(clock, 1.5);
  times.push_back(clock.seconds());
  co_await sleep(clock, 0.5);
  times.push_back(clock.seconds());
  co_return "rested";
}

Task<int> thrower(Deferred<int> d) {
  const int v = co_await d;
  if (v < 0) throw std::invalid_argument("negative: " + std::to_string(v));
  co_return v;
}

Task<std::string> catcher(Deferred<int> d) {
  try {
    co_await thrower(d);
    co_return "no error";
  } catch (const std::invalid_argument& e) {
    co_return std::string("caught ") + e.what();
  }
}

}  // namespace

TEST_CASE("task_awaits_deferreds") {
  Deferred<int> a, b;
  Task<int> t = add_later(a, b);
  CHECK_FALSE(t.done());
  a.callback(2);
  CHECK_FALSE(t.done());
  b.callback(40);
  CHECK(t.done());
  int got = 0;
  t.deferred().add_callback([&](int v) { got = v; });
  CHECK(got == 42);
}

TEST_CASE("task_runs_eagerly_through_fired_deferreds") {
  Task<int> t = add_later(succeed(1), succeed(2));
  CHECK(t.done());
  int got = 0;
  Deferred<int>(t).add_callback([&](int v) { got = v; });
  CHECK(got == 3);
}

TEST_CASE("sleep_on_manual_clock") {
  ManualClock clock;
  std::vector<double> times;
  auto t = sleepy(clock, times);
  CHECK(times == std::vector<double>{0});
  clock.advance(1.0);
  CHECK(times.size() == 1);
  clock.advance(0.5);
  CHECK(times == std::vector<double>{0, 1.5});
  clock.advance(0.5);
  CHECK(times == std::vector<double>{0, 1.5, 2.0});
  std::string got;
  t.deferred().add_callback([&](std::string s) { got = s; });
  CHECK(got == "rested");
}

TEST_CASE("exceptions_propagate_through_co_await") {
  Deferred<int> d;
  auto t = catcher(d);
  d.callback(-3);
  std::string got;
  t.deferred().add_callback([&](std::string s) { got = s; });
  CHECK(got == "caught negative: -3");

  // And out of a task into its Deferred.
  std::string error;
  thrower(succeed(-1)).deferred().add_errback([&](std::exception_ptr e) {
    error = describe_error(e);
    return 0;
  });
  CHECK(error == "negative: -1");
}

TEST_CASE("errors_of_awaited_deferreds_are_thrown") {
  Deferred<int> d;
  auto t = thrower(d);
  d.errback(std::runtime_error("upstream"));
  bool right = false;
  t.deferred().add_errback([&](std::exception_ptr e) {
    right = error_is<std::runtime_error>(e) && describe_error(e) == "upstream";
    return 0;
  });
  CHECK(right);
}

TEST_CASE("task_to_deferred_and_back") {
  Deferred<int> d;
  Task<int> t = as_task(d);
  Task<int> doubled = [](Task<int> in) -> Task<int> { co_return 2 * co_await in; }(t);
  d.callback(21);
  int got = 0;
  doubled.deferred().add_callback([&](int v) { got = v; });
  CHECK(got == 42);
}

TEST_CASE("cancelling_a_task_cancels_what_it_awaits") {
  ManualClock clock;
  int step = 0;
  bool cancelled_inside = false;
  // Coroutine lambdas take what they use as parameters: captures live in the closure,
  // which is a temporary gone before the coroutine resumes.
  auto t = [](ManualClock& c, int& s, bool& inside) -> Task<void> {
    s = 1;
    try {
      co_await sleep(c, 10);
    } catch (const CancelledError&) {
      inside = true;
      throw;
    }
    s = 2;
  }(clock, step, cancelled_inside);
  CHECK(clock.pending_count() == 1);
  CHECK(t.cancel());
  CHECK(cancelled_inside);
  CHECK(clock.pending_count() == 0);  // the timer went with it
  CHECK(step == 1);
  bool error = false;
  t.deferred().add_errback([&](std::exception_ptr e) { error = error_is<CancelledError>(e); });
  CHECK(error);
  CHECK_FALSE(t.cancel());
}

TEST_CASE("cancel_reaches_through_nested_tasks") {
  int cancels = 0;
  Deferred<int> leaf([&](Deferred<int>&) { ++cancels; });
  auto inner = [](Deferred<int> d) -> Task<int> { co_return co_await d; };
  auto outer = [](auto make_inner, Deferred<int> d) -> Task<int> {
    co_return 1 + co_await make_inner(d);
  };
  auto t = outer(inner, leaf);
  t.cancel();
  CHECK(cancels == 1);
  CHECK(t.done());
  t.deferred().add_errback([](std::exception_ptr) { return 0; });
}

TEST_CASE("task_that_catches_cancel_may_recover") {
  Deferred<int> d;
  auto t = [](Deferred<int> in) -> Task<int> {
    try {
      co_return co_await in;
    } catch (const CancelledError&) {
      co_return -1;
    }
  }(d);
  t.cancel();
  int got = 0;
  t.deferred().add_callback([&](int v) { got = v; });
  CHECK(got == -1);
}

TEST_CASE("coroutine_waiting_on_a_dropped_deferred_is_destroyed") {
  // A local whose destructor tells us the frame went away.
  struct Flag {
    bool* flag;
    ~Flag() { *flag = true; }
  };
  bool destroyed = false;
  std::optional<Task<int>> t;
  {
    auto producer = std::make_unique<Deferred<int>>();
    t = [](Deferred<int> d, bool* f) -> Task<int> {
      Flag guard{f};
      co_return co_await std::move(d);
    }(*producer, &destroyed);
    CHECK_FALSE(destroyed);
    producer.reset();  // nobody can fire it any more
  }
  CHECK(destroyed);
  CHECK_FALSE(t->done());
}

TEST_CASE("coroutine_sleeping_when_its_reactor_is_destroyed_is_destroyed_too") {
  // sleep() is defer_later: the reactor's pending call is the only thing that could
  // resume the coroutine, so destroying the reactor must free the frame (its locals'
  // destructors run), whether or not the Task is still held. LeakSanitizer, in the ASan
  // build, reports anything left behind.
  struct Flag {
    bool* flag;
    ~Flag() { *flag = true; }
  };
  bool destroyed = false;
  bool woke = false;
  std::optional<Task<void>> t;
  SUBCASE("the Task kept") {
    {
      Reactor reactor;
      t = [](Reactor& r, bool* f, bool* w) -> Task<void> {
        Flag guard{f};
        co_await sleep(r, 60);
        *w = true;
      }(reactor, &destroyed, &woke);
      CHECK_FALSE(destroyed);
    }
    CHECK(destroyed);
    CHECK_FALSE(t->done());
  }
  SUBCASE("the Task dropped, on a manual clock") {
    {
      ManualClock clock;
      [](ManualClock& c, bool* f, bool* w) -> Task<void> {
        Flag guard{f};
        co_await sleep(c, 60);
        *w = true;
      }(clock, &destroyed, &woke);
      CHECK_FALSE(destroyed);  // the pending call keeps it
      CHECK(clock.pending_count() == 1);
    }
    CHECK(destroyed);
  }
  CHECK_FALSE(woke);
}

TEST_CASE("sleep_on_the_reactor") {
  Reactor reactor;
  bool done = false;
  const double start = reactor.seconds();
  auto t = [](Reactor& r, bool& flag) -> Task<void> {
    co_await sleep(r, 0.02);
    flag = true;
  }(reactor, done);
  torsion::test::wait_for(reactor, [&] { return done; }, "the sleep to end");
  CHECK(reactor.seconds() - start >= 0.02);
  CHECK(t.done());
}

namespace {
Task<int> double_later(ManualClock& clock, int v) {
  co_await sleep(clock, 1);
  co_return v * 2;
}
}  // namespace

TEST_CASE("deferred_callback_may_return_a_task") {
  ManualClock clock;
  Deferred<int> d;
  int got = 0;
  d.add_callback([&clock](int v) { return double_later(clock, v); })
      .add_callback([&](int v) { got = v; });
  d.callback(21);
  CHECK(got == 0);
  clock.advance(1);
  CHECK(got == 42);
}
