#include "framework/deferred.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "framework/reactor.hpp"
#include "framework/testing/manual_clock.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

namespace {

// Captures log events for the duration of a test.
struct LogCapture {
  std::vector<std::string> lines;
  LogCapture() {
    set_log_sink([this](LogLevel, std::string_view m) { lines.emplace_back(m); });
  }
  ~LogCapture() { set_log_sink(nullptr); }
  bool contains(const std::string& s) const {
    for (auto& l : lines)
      if (l.find(s) != std::string::npos) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("callback_chain_changes_type") {
  Deferred<int> d;
  std::string seen;
  auto tail = d.add_callback([](int v) { return v * 2; })
                  .add_callback([](int v) { return std::to_string(v); })
                  .add_callback([&](std::string s) { seen = s; });
  CHECK_FALSE(tail.called());
  d.callback(21);
  CHECK(seen == "42");
  CHECK(tail.called());
}

TEST_CASE("callbacks_run_at_once_on_a_fired_deferred") {
  int got = 0;
  succeed(7).add_callback([&](int v) { got = v; });
  CHECK(got == 7);
  bool ran = false;
  succeed().add_callback([&] { ran = true; });
  CHECK(ran);
}

TEST_CASE("exception_in_callback_goes_to_errback_and_recovers") {
  Deferred<int> d;
  std::string error;
  int after = 0;
  d.add_callback([](int) -> int { throw std::runtime_error("bad value"); })
      .add_callback([](int v) { return v + 1000; })  // skipped
      .add_errback([&](std::exception_ptr e) {
        error = describe_error(e);
        return -1;
      })
      .add_callback([&](int v) { after = v; });
  d.callback(1);
  CHECK(error == "bad value");
  CHECK(after == -1);
}

TEST_CASE("errback_that_rethrows_propagates") {
  Deferred<void> d;
  int errbacks = 0;
  bool final_error = false;
  d.add_errback([&](std::exception_ptr e) {
     ++errbacks;
     std::rethrow_exception(e);
   })
      .add_errback([&](std::exception_ptr e) { final_error = error_is<std::out_of_range>(e); });
  d.errback(std::out_of_range("x"));
  CHECK(errbacks == 1);
  CHECK(final_error);
}

TEST_CASE("catch_error_traps_only_its_type") {
  int recovered = 0;
  fail<int>(std::invalid_argument("no"))
      .catch_error<std::invalid_argument>([](const std::invalid_argument&) { return 5; })
      .add_callback([&](int v) { recovered = v; });
  CHECK(recovered == 5);
  bool passed_through = false;
  fail<int>(std::runtime_error("other"))
      .catch_error<std::invalid_argument>([](const std::invalid_argument&) { return 5; })
      .add_errback([&](std::exception_ptr e) {
        passed_through = error_is<std::runtime_error>(e);
        return 0;
      });
  CHECK(passed_through);
}

TEST_CASE("callback_returning_deferred_waits_for_it") {
  Deferred<int> first;
  Deferred<std::string> inner;
  std::string got;
  auto tail = first.add_callback([&](int) { return inner; }).add_callback([&](std::string s) {
    got = s;
    return s.size();
  });
  first.callback(1);
  CHECK(got.empty());
  CHECK_FALSE(tail.called());
  inner.callback("hello");
  CHECK(got == "hello");
  std::size_t size = 0;
  tail.add_callback([&](std::size_t n) { size = n; });
  CHECK(size == 5);
}

TEST_CASE("add_both_sees_value_and_error") {
  std::vector<std::string> seen;
  auto record = [&](Outcome<int> o) {
    seen.push_back(o.ok() ? std::to_string(o.value()) : describe_error(o.error()));
  };
  succeed(3).add_both(record);
  fail<int>(std::runtime_error("boom")).add_both(record);
  CHECK(seen == std::vector<std::string>{"3", "boom"});
}

TEST_CASE("add_callbacks_picks_one_branch") {
  std::string a, b;
  succeed(1).add_callbacks([](int) { return std::string("value"); },
                           [](std::exception_ptr) { return std::string("error"); })
      .add_callback([&](std::string s) { a = s; });
  fail<int>(std::runtime_error("x"))
      .add_callbacks([](int) { return std::string("value"); },
                     [](std::exception_ptr) { return std::string("error"); })
      .add_callback([&](std::string s) { b = s; });
  CHECK(a == "value");
  CHECK(b == "error");
}

TEST_CASE("firing_twice_is_a_programming_error") {
  Deferred<int> d;
  d.callback(1);
  CHECK_THROWS_AS(d.callback(2), AlreadyCalledError);
  CHECK_THROWS_AS(d.errback(std::runtime_error("x")), AlreadyCalledError);
  d.add_callback([](int) {});
}

TEST_CASE("second_consumer_after_a_type_change_is_rejected") {
  Deferred<int> d;
  d.add_callback([](int) {});  // the chain now carries void
  CHECK_THROWS_WITH_AS(d.add_callback([](int) {}), doctest::Contains("another type"),
                       std::logic_error);
  d.callback(1);
}

TEST_CASE("move_only_values_travel_the_chain") {
  Deferred<std::unique_ptr<int>> d;
  int got = 0;
  d.add_callback([](std::unique_ptr<int> p) { return p; })
      .add_callback([&](std::unique_ptr<int> p) { got = *p; });
  d.callback(std::make_unique<int>(9));
  CHECK(got == 9);
}

TEST_CASE("cancel_calls_canceller_then_fails_with_cancelled") {
  int cancelled = 0;
  Deferred<int> d([&](Deferred<int>&) { ++cancelled; });
  bool saw_cancel = false;
  d.add_errback([&](std::exception_ptr e) {
    saw_cancel = error_is<CancelledError>(e);
    return 0;
  });
  CHECK(d.cancel());
  CHECK(cancelled == 1);
  CHECK(saw_cancel);
  CHECK_FALSE(d.cancel());  // already fired: a harmless no-op
  d.callback(5);            // the producer firing late is ignored
}

TEST_CASE("canceller_may_choose_the_result") {
  Deferred<int> d([](Deferred<int>& self) { self.callback(-1); });
  int got = 0;
  d.add_callback([&](int v) { got = v; });
  d.cancel();
  CHECK(got == -1);
}

TEST_CASE("cancel_on_chain_tail_reaches_the_head_and_inner_deferreds") {
  int head_cancelled = 0;
  Deferred<int> head([&](Deferred<int>&) { ++head_cancelled; });
  auto tail = head.add_callback([](int v) { return v; });
  bool cancelled_error = false;
  tail.cancel();
  CHECK(head_cancelled == 1);
  tail.add_errback([&](std::exception_ptr e) { cancelled_error = error_is<CancelledError>(e); return 0; });
  CHECK(cancelled_error);

  int inner_cancelled = 0;
  Deferred<int> inner([&](Deferred<int>&) { ++inner_cancelled; });
  Deferred<int> outer;
  auto t2 = outer.add_callback([&](int) { return inner; });
  outer.callback(0);
  t2.cancel();
  CHECK(inner_cancelled == 1);
  t2.add_errback([](std::exception_ptr) { return 0; });
}

TEST_CASE("add_timeout_fails_with_timeout_error_on_manual_clock") {
  ManualClock clock;
  int cancelled = 0;
  Deferred<int> d([&](Deferred<int>&) { ++cancelled; });
  d.add_timeout(5, clock);
  std::string error;
  auto tail = d.add_errback([&](std::exception_ptr e) {
    CHECK(error_is<TimeoutError>(e));
    error = describe_error(e);
    return 0;
  });
  clock.advance(4.9);
  CHECK_FALSE(d.called());
  clock.advance(0.1);
  CHECK(cancelled == 1);
  CHECK(error.find("timed out after 5") != std::string::npos);
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("add_timeout_is_dropped_when_fired_in_time") {
  ManualClock clock;
  Deferred<int> d;
  d.add_timeout(5, clock);
  CHECK(clock.pending_count() == 1);
  d.callback(1);
  CHECK(clock.pending_count() == 0);
  int got = 0;
  d.add_callback([&](int v) { got = v; });
  CHECK(got == 1);
  CHECK_THROWS_WITH_AS(Deferred<int>().add_timeout(-1, clock), doctest::Contains("-1"),
                       std::invalid_argument);
}

TEST_CASE("unhandled_error_is_logged_at_destruction") {
  LogCapture capture;
  { auto d = fail<int>(std::runtime_error("nobody listened")); }
  CHECK(capture.contains("Unhandled error in Deferred: nobody listened"));
  capture.lines.clear();
  { fail<int>(std::runtime_error("handled")).add_errback([](std::exception_ptr) { return 0; }); }
  CHECK(capture.lines.empty());
  // The error moves to the end of the chain: logged once, from the tail.
  { fail<int>(std::runtime_error("at the tail")).add_callback([](int v) { return v; }); }
  CHECK(capture.lines.size() == 1);
  CHECK(capture.contains("at the tail"));
}

TEST_CASE("gather_collects_values_in_input_order") {
  Deferred<int> a, b, c;
  std::vector<int> got;
  gather(std::vector<Deferred<int>>{a, b, c}).add_callback([&](std::vector<int> v) { got = v; });
  c.callback(3);
  a.callback(1);
  CHECK(got.empty());
  b.callback(2);
  CHECK(got == std::vector<int>{1, 2, 3});

  bool empty_fired = false;
  gather(std::vector<Deferred<int>>{}).add_callback([&](std::vector<int> v) { empty_fired = v.empty(); });
  CHECK(empty_fired);
}

TEST_CASE("gather_waits_for_all_then_fails_with_first_error_in_input_order") {
  LogCapture capture;
  Deferred<int> a, b, c;
  std::string error;
  gather(std::vector<Deferred<int>>{a, b, c}).add_errback([&](std::exception_ptr e) {
    error = describe_error(e);
    return std::vector<int>{};
  });
  c.errback(std::runtime_error("c failed"));
  b.errback(std::runtime_error("b failed"));
  CHECK(error.empty());
  a.callback(1);
  CHECK(error == "b failed");
  CHECK(capture.lines.empty());  // the inputs' errors were consumed
}

TEST_CASE("gather_first_error_fails_at_once") {
  Deferred<int> a, b;
  std::string error;
  gather(std::vector<Deferred<int>>{a, b}, GatherOptions{.first_error = true})
      .add_errback([&](std::exception_ptr e) {
        error = describe_error(e);
        return std::vector<int>{};
      });
  b.errback(std::runtime_error("b failed"));
  CHECK(error == "b failed");
  a.callback(1);  // late results are consumed quietly
}

TEST_CASE("gather_void_and_cancel_cancels_inputs") {
  int cancelled = 0;
  Deferred<void> a([&](Deferred<void>&) { ++cancelled; });
  Deferred<void> b([&](Deferred<void>&) { ++cancelled; });
  auto all = gather(std::vector<Deferred<void>>{a, b});
  bool error = false;
  all.cancel();
  CHECK(cancelled == 2);
  all.add_errback([&](std::exception_ptr e) { error = error_is<CancelledError>(e); });
  CHECK(error);
}

TEST_CASE("deferred_list_gives_every_outcome") {
  Deferred<int> a, b;
  std::vector<Outcome<int>> got;
  deferred_list(std::vector<Deferred<int>>{a, b}).add_callback([&](std::vector<Outcome<int>> v) {
    got = std::move(v);
  });
  a.errback(std::runtime_error("a failed"));
  b.callback(2);
  REQUIRE(got.size() == 2);
  CHECK_FALSE(got[0].ok());
  CHECK(describe_error(got[0].error()) == "a failed");
  CHECK(got[1].value() == 2);
}

TEST_CASE("defer_later_runs_on_the_scheduler_and_cancels") {
  ManualClock clock;
  int got = 0;
  defer_later(clock, 2, [] { return 40; }).add_callback([&](int v) { got = v + 2; });
  clock.advance(1);
  CHECK(got == 0);
  clock.advance(1);
  CHECK(got == 42);

  int calls = 0;
  auto d = defer_later(clock, 1, [&] { ++calls; });
  d.cancel();
  CHECK(clock.pending_count() == 0);
  clock.advance(5);
  CHECK(calls == 0);
  bool cancelled = false;
  d.add_errback([&](std::exception_ptr e) { cancelled = error_is<CancelledError>(e); });
  CHECK(cancelled);

  std::string error;
  defer_later(clock, 0, []() -> int { throw std::runtime_error("later"); })
      .add_errback([&](std::exception_ptr e) { error = describe_error(e); return 0; });
  clock.advance(0);
  CHECK(error == "later");
}

TEST_CASE("defer_later_pending_when_its_scheduler_is_destroyed_frees_everything") {
  // The pending call's closure owns the Deferred's state and the state's canceller owns a
  // handle on the call: destroying the scheduler must break that loop, whether or not
  // anyone still holds the Deferred. `token` is owned only by what defer_later and the
  // callbacks captured, so it expires exactly when all of that has been freed (and
  // LeakSanitizer, in the ASan build, reports any allocation left behind).
  auto token = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = token;
  bool ran = false;
  std::optional<Deferred<int>> kept;
  auto schedule = [&](Scheduler& scheduler) {
    auto d = defer_later(scheduler, 60, [token, &ran] {
      ran = true;
      return *token;
    });
    return d.add_callback([token](int v) { return v + *token; });
  };
  SUBCASE("a reactor, the Deferred dropped") {
    {
      Reactor reactor;
      schedule(reactor);
      token.reset();
      CHECK_FALSE(watch.expired());  // the pending call holds it
    }
  }
  SUBCASE("a reactor, the Deferred kept past it") {
    {
      Reactor reactor;
      kept = schedule(reactor);
      token.reset();
    }
    CHECK_FALSE(kept->called());  // never fired, and its call is gone
    CHECK(kept->cancel());         // cancelling it still works (the call's cancel is a no-op)
    bool cancelled = false;
    kept->add_errback([&](std::exception_ptr e) {
      cancelled = error_is<CancelledError>(e);
      return 0;
    });
    CHECK(cancelled);
    kept.reset();
  }
  SUBCASE("a manual clock, the Deferred dropped") {
    {
      ManualClock clock;
      schedule(clock);
      token.reset();
      CHECK(clock.pending_count() == 1);
    }
  }
  SUBCASE("a manual clock, the Deferred kept past it") {
    {
      ManualClock clock;
      kept = schedule(clock);
      token.reset();
    }
    kept.reset();
  }
  CHECK_FALSE(ran);
  CHECK(watch.expired());
}

TEST_CASE("add_both_returning_the_outcome_passes_the_result_on") {
  int seen = 0;
  int got = 0;
  succeed(5)
      .add_both([&](Outcome<int> o) {
        ++seen;
        return o;
      })
      .add_callback([&](int v) { got = v; });
  CHECK(seen == 1);
  CHECK(got == 5);
  std::string error;
  fail<int>(std::runtime_error("kept"))
      .add_both([](Outcome<int> o) { return o; })
      .add_errback([&](std::exception_ptr e) {
        error = describe_error(e);
        return 0;
      });
  CHECK(error == "kept");
}
