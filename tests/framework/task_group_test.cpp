#include "framework/task_group.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/cancel.hpp"
#include "framework/task.hpp"
#include "framework/testing/manual_clock.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

namespace {

// Sleeps `seconds`, then records `name` in `log`; records "<name> cancelled" if cancelled.
Task<void> nap(ManualClock& clock, double seconds, std::string name, std::vector<std::string>& log) {
  try {
    co_await sleep(clock, seconds);
  } catch (const CancelledError&) {
    log.push_back(name + " cancelled");
    throw;
  }
  log.push_back(name);
}

Task<void> fail_after(ManualClock& clock, double seconds, std::string what) {
  co_await sleep(clock, seconds);
  throw std::runtime_error(what);
}

// Records the outcome of a Deferred<void>: "ok", or the error's text.
template <class D>
void record(D d, std::string& out) {
  d.add_both([&out](Outcome<void> o) { out = o.ok() ? "ok" : describe_error(o.error()); });
}

}  // namespace

TEST_CASE("task_cancel_waits_for_the_coroutine_to_clean_up") {
  ManualClock clock;
  std::vector<std::string> log;
  auto t = [](ManualClock& c, std::vector<std::string>& l) -> Task<int> {
    try {
      co_await sleep(c, 10);
    } catch (const CancelledError&) {
      l.push_back("caught");
    }
    co_await sleep(c, 1);  // clean-up that takes time
    l.push_back("cleaned");
    throw CancelledError();
  }(clock, log);
  CHECK(t.cancel());
  REQUIRE(log == std::vector<std::string>{"caught"});
  CHECK_FALSE(t.done());  // the Task ends when the coroutine does, not before
  clock.advance(1);
  CHECK(log == std::vector<std::string>{"caught", "cleaned"});
  REQUIRE(t.done());
  bool cancelled = false;
  t.deferred().add_errback([&](std::exception_ptr e) {
    cancelled = error_is<CancelledError>(e);
    return 0;
  });
  CHECK(cancelled);
}

TEST_CASE("a_second_cancel_reaches_the_clean_up") {
  ManualClock clock;
  int stage = 0;
  auto t = [](ManualClock& c, int& s) -> Task<void> {
    try {
      co_await sleep(c, 10);
    } catch (const CancelledError&) {
      s = 1;
    }
    co_await sleep(c, 10);
    s = 2;
  }(clock, stage);
  t.cancel();
  REQUIRE(stage == 1);
  CHECK_FALSE(t.done());
  t.cancel();
  CHECK(t.done());
  CHECK(stage == 1);
  CHECK(clock.pending_count() == 0);
  t.deferred().add_errback([](std::exception_ptr) {});
}

TEST_CASE("a_cancel_while_the_coroutine_runs_hits_its_next_await") {
  ManualClock clock;
  std::vector<std::string> log;
  std::optional<Task<void>> self;
  Deferred<void> go;
  auto t = [](Deferred<void> g, ManualClock& c, std::optional<Task<void>>& me,
              std::vector<std::string>& l) -> Task<void> {
    co_await g;
    me->cancel();  // cancelled while running: nothing is awaited right now
    l.push_back("still running");
    try {
      co_await sleep(c, 5);
      l.push_back("slept");
    } catch (const CancelledError&) {
      l.push_back("next await cancelled");
      throw;
    }
  }(go, clock, self, log);
  self = t;
  go.callback();
  CHECK(log == std::vector<std::string>{"still running", "next await cancelled"});
  CHECK(clock.pending_count() == 0);
  REQUIRE(t.done());
  t.deferred().add_errback([](std::exception_ptr) {});
}

TEST_CASE("task_group_waits_for_every_child") {
  ManualClock clock;
  std::vector<std::string> log;
  std::string joined;
  auto parent = [](ManualClock& c, std::vector<std::string>& l) -> Task<void> {
    TaskGroup group;
    group.spawn(nap(c, 1, "a", l));
    group.spawn([&c, &l]() -> Task<void> { co_await nap(c, 2, "b", l); });
    CHECK(group.size() == 2);
    co_await group;
    l.push_back("joined");
  }(clock, log);
  record(parent.deferred(), joined);
  clock.advance(1);
  CHECK(log == std::vector<std::string>{"a"});
  clock.advance(1);
  CHECK(log == std::vector<std::string>{"a", "b", "joined"});
  CHECK(joined == "ok");
}

TEST_CASE("task_group_cancels_siblings_when_a_child_fails_and_gives_the_first_error") {
  ManualClock clock;
  std::vector<std::string> log;
  TaskGroup group;
  group.spawn(nap(clock, 10, "slow", log));
  group.spawn(fail_after(clock, 1, "first"));
  group.spawn(fail_after(clock, 1, "second"));
  std::string outcome;
  record(group.join(), outcome);
  clock.advance(1);
  CHECK(log == std::vector<std::string>{"slow cancelled"});
  CHECK(group.size() == 0);
  CHECK(outcome == "first");
  CHECK(clock.pending_count() == 0);
  CHECK_THROWS_AS(group.spawn(nap(clock, 1, "late", log)), std::logic_error);
}

TEST_CASE("task_group_join_waits_for_a_child_cleaning_up_after_cancel") {
  ManualClock clock;
  std::vector<std::string> log;
  TaskGroup group;
  group.spawn([&clock, &log]() -> Task<void> {
    bool cancelled = false;
    try {
      co_await sleep(clock, 10);
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      co_await sleep(clock, 2);  // a clean-up that takes two seconds
      log.push_back("cleaned up");
      throw CancelledError();
    }
  });
  group.spawn(fail_after(clock, 1, "boom"));
  std::string outcome;
  record(group.join(), outcome);
  clock.advance(1);
  CHECK(outcome.empty());  // still waiting for the clean-up
  CHECK(group.size() == 1);
  clock.advance(2);
  CHECK(log == std::vector<std::string>{"cleaned up"});
  CHECK(outcome == "boom");
}

TEST_CASE("cancelling_the_task_awaiting_a_group_cancels_the_children") {
  ManualClock clock;
  std::vector<std::string> log;
  auto parent = [](ManualClock& c, std::vector<std::string>& l) -> Task<void> {
    TaskGroup group;
    group.spawn(nap(c, 5, "x", l));
    group.spawn(nap(c, 6, "y", l));
    co_await group;
    l.push_back("not reached");
  }(clock, log);
  parent.cancel();
  CHECK(log == std::vector<std::string>{"x cancelled", "y cancelled"});
  REQUIRE(parent.done());
  std::string outcome;
  record(parent.deferred(), outcome);
  CHECK(outcome == "the operation was cancelled");
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("destroying_a_task_group_cancels_its_children") {
  ManualClock clock;
  std::vector<std::string> log;
  Task<void> child = nap(clock, 5, "child", log);
  {
    TaskGroup group;
    group.spawn(child);
  }
  CHECK(log == std::vector<std::string>{"child cancelled"});
  CHECK(child.done());
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("task_group_cancel_and_deferred_children") {
  ManualClock clock;
  TaskGroup group;
  Deferred<int> plain;
  group.spawn(plain);
  group.spawn([&clock] { return sleep(clock, 3); });  // a function returning a Deferred
  group.cancel();
  CHECK(plain.called());
  std::string outcome;
  record(group.join(), outcome);
  CHECK(outcome == "the operation was cancelled");
}

TEST_CASE("with_timeout_fails_with_timeout_error_after_the_operation_ends") {
  ManualClock clock;
  std::vector<std::string> log;
  auto t = [](ManualClock& c, std::vector<std::string>& l) -> Task<std::string> {
    try {
      co_await with_timeout(c, 2, nap(c, 10, "slow", l));
      co_return "finished";
    } catch (const TimeoutError& e) {
      co_return std::string("timeout: ") + e.what();
    }
  }(clock, log);
  clock.advance(2);
  REQUIRE(t.done());
  CHECK(log == std::vector<std::string>{"slow cancelled"});
  std::string got;
  t.deferred().add_callback([&](std::string s) { got = s; });
  CHECK(got.rfind("timeout: timed out after 2", 0) == 0);
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("with_timeout_gives_the_value_in_time_and_drops_its_timer") {
  ManualClock clock;
  Deferred<int> d;
  int got = 0;
  with_timeout(clock, 5, d).add_callback([&](int v) { got = v; });
  CHECK(clock.pending_count() == 1);
  d.callback(7);
  CHECK(got == 7);
  CHECK(clock.pending_count() == 0);
  CHECK_THROWS_AS((void)with_timeout(clock, -1, Deferred<int>()), std::invalid_argument);
}

TEST_CASE("a_task_group_with_a_timeout") {
  ManualClock clock;
  std::vector<std::string> log;
  auto both = [](ManualClock& c, std::vector<std::string>& l) -> Task<void> {
    TaskGroup group;
    group.spawn(nap(c, 1, "quick", l));
    group.spawn(nap(c, 60, "slow", l));
    co_await group;
  };
  std::string outcome;
  record(with_timeout(clock, 5, both(clock, log)), outcome);
  clock.advance(5);
  CHECK(log == std::vector<std::string>{"quick", "slow cancelled"});
  CHECK(outcome.rfind("timed out after 5", 0) == 0);
}

TEST_CASE("cancel_scope_cancels_what_runs_inside_and_what_comes_later") {
  ManualClock clock;
  std::vector<std::string> log;
  CancelScope scope;
  std::string first;
  record(scope.run(nap(clock, 5, "inside", log)), first);
  CHECK(scope.size() == 1);
  scope.cancel();
  CHECK(scope.cancel_called());
  CHECK(log == std::vector<std::string>{"inside cancelled"});
  CHECK(first == "the operation was cancelled");
  std::string later;
  record(scope.run(nap(clock, 5, "later", log)), later);
  CHECK(later == "the operation was cancelled");
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("cancel_scope_deadline_gives_timeout_error") {
  ManualClock clock;
  std::vector<std::string> log;
  auto t = [](ManualClock& c, std::vector<std::string>& l) -> Task<std::string> {
    CancelScope scope;
    scope.cancel_after(c, 3);
    co_await scope.run(nap(c, 1, "one", l));
    try {
      co_await scope.run(nap(c, 10, "two", l));
    } catch (const TimeoutError& e) {
      co_return e.what();
    }
    co_return "no timeout";
  }(clock, log);
  clock.advance(3);
  REQUIRE(t.done());
  CHECK(log == std::vector<std::string>{"one", "two cancelled"});
  std::string got;
  t.deferred().add_callback([&](std::string s) { got = s; });
  CHECK(got.find("deadline") != std::string::npos);
}

TEST_CASE("first_of_keeps_the_first_and_cancels_the_rest") {
  ManualClock clock;
  std::vector<std::string> log;
  auto value_after = [](ManualClock& c, double s, int v) -> Task<int> {
    co_await sleep(c, s);
    co_return v;
  };
  std::optional<FirstOf<int>> got;
  race(value_after(clock, 3, 30), value_after(clock, 1, 10), value_after(clock, 2, 20))
      .add_callback([&](FirstOf<int> w) { got = w; });
  clock.advance(1);
  REQUIRE(got);
  CHECK(got->index == 1);
  CHECK(got->value == 10);
  CHECK(clock.pending_count() == 0);

  // void inputs give the index; an error that comes first is the result
  std::string outcome;
  std::vector<Deferred<void>> inputs;
  inputs.push_back(nap(clock, 5, "a", log));
  inputs.push_back(fail_after(clock, 1, "lost"));
  first_of(std::move(inputs)).add_both([&](Outcome<std::size_t> o) {
    outcome = o.ok() ? std::to_string(o.value()) : describe_error(o.error());
  });
  clock.advance(1);
  CHECK(outcome == "lost");
  CHECK(log == std::vector<std::string>{"a cancelled"});
  CHECK_THROWS_AS((void)first_of(std::vector<Deferred<int>>{}), std::invalid_argument);
}

TEST_CASE("cancelling_first_of_cancels_every_input") {
  ManualClock clock;
  std::vector<std::string> log;
  auto d = race(nap(clock, 1, "a", log), nap(clock, 2, "b", log));
  d.cancel();
  CHECK(log == std::vector<std::string>{"a cancelled", "b cancelled"});
  std::string outcome;
  d.add_both([&](Outcome<std::size_t> o) { outcome = o.ok() ? "ok" : describe_error(o.error()); });
  CHECK(outcome == "the operation was cancelled");
}

TEST_CASE("a_child_destroyed_unfinished_destroys_the_coroutine_awaiting_the_group") {
  struct Flag {
    bool* flag;
    ~Flag() { *flag = true; }
  };
  bool parent_gone = false;
  std::optional<Task<void>> parent;
  {
    auto producer = std::make_unique<Deferred<int>>();
    parent = [](Deferred<int> d, bool* gone) -> Task<void> {
      Flag guard{gone};
      TaskGroup group;
      group.spawn([](Deferred<int> in) -> Task<void> { co_await std::move(in); }(std::move(d)));
      co_await group;
    }(*producer, &parent_gone);
    CHECK_FALSE(parent_gone);
    producer.reset();  // the child can never be resumed: its frame goes, then the parent's
  }
  CHECK(parent_gone);
  CHECK_FALSE(parent->done());
}
