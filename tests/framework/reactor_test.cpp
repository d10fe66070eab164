#include "framework/reactor.hpp"
#include "framework/io_backend.hpp"

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "framework/delayed_call.hpp"
#include "framework/log.hpp"
#include "tests/support/wait.hpp"

using torsion::Priority;
using torsion::Reactor;
using torsion::test::wait_for;

TEST_CASE("call_soon runs callbacks in FIFO order") {
  Reactor reactor;
  std::string order;
  for (char c : std::string("abcde")) reactor.call_soon([&order, c] { order += c; });
  wait_for(reactor, [&] { return order.size() == 5; }, "five callbacks");
  CHECK(order == "abcde");
}

TEST_CASE("callbacks_added_while_the_queue_runs_wait_for_the_next_turn") {
  Reactor reactor;
  std::vector<std::string> log;
  bool io_ran = false;
  reactor.call_soon([&] {
    log.push_back("a");
    reactor.call_soon([&] { log.push_back(io_ran ? "c-after-io" : "c-before-io"); });
    // Raw Asio work queued now stands for ready I/O: it must run before "c".
    asio::post(reactor.context(), [&] { io_ran = true; });
  });
  reactor.call_soon([&] { log.push_back("b"); });
  wait_for(reactor, [&] { return log.size() == 3; }, "three callbacks");
  CHECK(log == std::vector<std::string>{"a", "b", "c-after-io"});
}

TEST_CASE("high priority callbacks run before normal ones of the same turn") {
  Reactor reactor;
  std::string order;
  reactor.call_soon([&] { order += 'n'; });
  reactor.call_soon([&] { order += 'h'; }, Priority::high);
  reactor.call_soon([&] { order += 'm'; });
  wait_for(reactor, [&] { return order.size() == 3; }, "three callbacks");
  CHECK(order == "hnm");
}

TEST_CASE("idle_runs_only_when_nothing_else_is_ready") {
  Reactor reactor;
  std::vector<std::string> log;
  reactor.call_idle([&] { log.push_back("idle"); });
  reactor.call_soon([&] {
    log.push_back("normal1");
    reactor.call_soon([&] { log.push_back("normal2"); });
  });
  reactor.call_later(0, [&] { log.push_back("timer"); });
  wait_for(reactor, [&] { return log.size() == 4; }, "four callbacks");
  REQUIRE(log.size() == 4);
  CHECK(log.back() == "idle");
}

TEST_CASE("one idle callback per iteration, so I/O can come between them") {
  Reactor reactor;
  std::vector<std::string> log;
  reactor.call_idle([&] {
    log.push_back("idle1");
    asio::post(reactor.context(), [&] { log.push_back("io"); });
  });
  reactor.call_idle([&] { log.push_back("idle2"); });
  wait_for(reactor, [&] { return log.size() == 3; }, "three events");
  CHECK(log == std::vector<std::string>{"idle1", "io", "idle2"});
}

TEST_CASE("run returns after stop, and idle callbacks run inside run") {
  Reactor reactor;
  int idle_runs = 0;
  std::function<void()> busy = [&] {
    if (++idle_runs == 100)
      reactor.stop();
    else
      reactor.call_idle(busy);
  };
  reactor.call_soon([&] { reactor.call_idle(busy); });  // arrives while run() blocks
  reactor.run();
  CHECK(idle_runs == 100);
  CHECK_FALSE(reactor.running());
}

TEST_CASE("a timer due does not wait for idle work, idle work waits for the timer") {
  Reactor reactor;
  std::vector<std::string> log;
  const double start = reactor.seconds();
  reactor.call_later(0.05, [&] { log.push_back("timer"); reactor.stop(); });
  std::function<void()> idle = [&] {
    if (log.empty() || log.back() != "idle") log.push_back("idle");
    reactor.call_idle(idle);
  };
  reactor.call_idle(idle);
  reactor.run();
  CHECK(log.back() == "timer");
  CHECK(reactor.seconds() - start >= 0.05);
}

TEST_CASE("call_later on the real reactor fires after its delay") {
  Reactor reactor;
  const double start = reactor.seconds();
  double fired_at = 0;
  reactor.call_later(0.02, [&] { fired_at = reactor.seconds(); });
  auto cancelled = reactor.call_later(0.01, [&] { fired_at = -1; });
  cancelled.cancel();
  wait_for(reactor, [&] { return fired_at != 0; }, "the timer");
  CHECK(fired_at - start >= 0.02);
  CHECK(reactor.pending_calls().empty());
}

TEST_CASE("an earlier timer scheduled later re-arms the loop") {
  Reactor reactor;
  std::string order;
  reactor.call_later(5, [&] { order += "late"; });
  reactor.call_later(0.01, [&] { order += "early"; });
  wait_for(reactor, [&] { return !order.empty(); }, "the early timer");
  CHECK(order == "early");
}

TEST_CASE("stop from a callback ends run") {
  Reactor reactor;
  bool after = false;
  reactor.call_later(0.001, [&] { reactor.stop(); });
  reactor.run();
  reactor.call_soon([&] { after = true; });
  wait_for(reactor, [&] { return after; }, "the reactor to run again");
  CHECK(after);
}

TEST_CASE("call_from_thread is safe from another thread") {
  Reactor reactor;
  std::atomic<int> count{0};
  int seen = 0;
  std::jthread worker([&] {  // joined on the way out if the wait fails
    for (int i = 0; i < 1000; ++i) reactor.call_from_thread([&] { ++seen; ++count; });
  });
  wait_for(reactor, [&] { return seen == 1000; }, "1000 calls from a thread");
  worker.join();
  CHECK(count == 1000);
}

TEST_CASE("an exception in call_soon is logged and the loop goes on") {
  Reactor reactor;
  std::vector<std::string> seen;
  torsion::set_log_sink([&](torsion::LogLevel, std::string_view m) { seen.emplace_back(m); });
  bool after = false;
  reactor.call_soon([] { throw std::runtime_error("oops"); });
  reactor.call_soon([&] { after = true; });
  wait_for(reactor, [&] { return after; }, "the second callback");
  torsion::set_log_sink(nullptr);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].find("oops") != std::string::npos);
}

TEST_CASE("run_until reports a deadline that passes") {
  Reactor reactor;
  CHECK_FALSE(reactor.run_until([] { return false; }, 0.02));
  CHECK_THROWS_AS(reactor.call_soon(nullptr), std::invalid_argument);
}

TEST_CASE("running twice is a clear error") {
  Reactor reactor;
  std::string message;
  reactor.call_soon([&] {
    try {
      reactor.run();
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    reactor.stop();
  });
  reactor.run();
  CHECK(message.find("already running") != std::string::npos);
}

TEST_CASE("raw Asio work runs on the reactor's context") {
  Reactor reactor;
  asio::steady_timer timer(reactor.context(), std::chrono::milliseconds(1));
  bool fired = false;
  timer.async_wait([&](const std::error_code& ec) { fired = !ec; });
  wait_for(reactor, [&] { return fired; }, "an asio timer");
  CHECK(fired);
}

TEST_CASE("a delay past what the clock counts never fires and does not spin the loop") {
  // Found by a user: 1e10 s overflowed the conversion to nanoseconds, the Asio timer fired
  // at once with nothing due, re-armed, and the loop spun. A ready timer handler would
  // make poll() run it; an armed far-off one leaves poll() with nothing to do.
  for (double delay : {9.3e9, 1e10, 1e300, std::numeric_limits<double>::infinity()}) {
    CAPTURE(delay);
    Reactor reactor;
    bool fired = false;
    torsion::DelayedCall call = reactor.call_later(delay, [&] { fired = true; });
    // On io_uring (-Dio_uring=true) the first poll runs Asio's own work: submitting the
    // timer's timeout to the ring (two operations). Nothing is left after it.
    const auto first = reactor.context().poll();
    CHECK(first <= (std::string(torsion::io_backend()) == "io_uring" ? 2u : 0u));
    CHECK(reactor.context().poll() == 0);
    CHECK(reactor.context().poll() == 0);
    CHECK(call.active());
    CHECK_FALSE(fired);
    // A near timer scheduled after it still fires on time.
    bool near = false;
    reactor.call_later(0.001, [&] { near = true; });
    wait_for(reactor, [&] { return near; }, "a near timer after a far one");
    CHECK_FALSE(fired);
    CHECK(call.cancel());
  }
}

TEST_CASE("run_until keeps its deadline while a callback queues itself again and again") {
  Reactor reactor;
  long turns = 0;
  std::function<void()> again = [&] {
    ++turns;
    reactor.call_soon(again);
  };
  reactor.call_soon(again);
  CHECK_FALSE(reactor.run_until([] { return false; }, 0.02));
  CHECK(turns > 0);
  CHECK_FALSE(reactor.running());
}

TEST_CASE("an exception from run_until's condition leaves the reactor ready to run again") {
  Reactor reactor;
  CHECK_THROWS_WITH_AS(reactor.run_until([]() -> bool { throw std::runtime_error("cond"); }, 1),
                       "cond", std::runtime_error);
  CHECK_FALSE(reactor.running());
  bool ran = false;
  reactor.call_soon([&] { ran = true; });
  CHECK(reactor.run_until([&] { return ran; }, 5));
  // run() too: a stop queued before it ends it at once.
  reactor.call_soon([&] { reactor.stop(); });
  reactor.run();
  CHECK_FALSE(reactor.running());
}

#ifndef NDEBUG
TEST_CASE("debug builds: call_soon and call_later from another thread while running throw") {
  Reactor reactor;
  std::atomic<int> refused{0};
  std::string soon_message;
  std::atomic<bool> done{false};
  std::thread worker;
  reactor.call_soon([&] {
    worker = std::thread([&] {
      try {
        reactor.call_soon([] {});
      } catch (const std::logic_error& e) {
        soon_message = e.what();
        ++refused;
      }
      try {
        reactor.call_later(0.1, [] {});
      } catch (const std::logic_error&) {
        ++refused;
      }
      reactor.call_from_thread([&] { done = true; });  // the one safe entry still works
    });
  });
  wait_for(reactor, [&] { return done.load(); }, "the worker thread's calls");
  worker.join();
  CHECK(refused == 2);
  CHECK(soon_message.find("call_from_thread") != std::string::npos);
  CHECK(reactor.pending_calls().empty());
  // Not running: set-up from another thread (as a ReactorPool does) is allowed.
  std::thread setup([&] { reactor.call_later(0.001, [] {}); });
  setup.join();
  CHECK(reactor.pending_calls().size() == 1);
}
#endif
