#include "framework/reactor_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wait.hpp"

using namespace torsion;

namespace {

// Joins the pool, failing (and aborting rather than hanging the suite) if its threads do
// not all return by the deadline.
void join_within(ReactorPool& pool, double seconds = test::kDeadline) {
  std::promise<void> joined;
  auto done = joined.get_future();
  std::thread joiner([&] {
    pool.join();
    joined.set_value();
  });
  if (done.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "ReactorPool::join did not return within %g s\n", seconds);
    std::abort();
  }
  joiner.join();
}

}  // namespace

TEST_CASE("pool_size_zero_is_rejected") {
  CHECK_THROWS_WITH_AS(ReactorPool(0), "ReactorPool: size must be at least 1, got 0",
                       std::invalid_argument);
  CHECK(ReactorPool::default_size() >= 1);
}

TEST_CASE("pool_reactor_index_out_of_range") {
  ReactorPool pool(2);
  CHECK(pool.size() == 2);
  CHECK(&pool.reactor(0) != &pool.reactor(1));
  CHECK_THROWS_WITH_AS(pool.reactor(2),
                       "ReactorPool::reactor: index 2 is out of range for a pool of 2",
                       std::out_of_range);
}

TEST_CASE("pool_runs_each_reactor_on_its_own_thread") {
  ReactorPool pool(3);
  std::mutex mu;
  std::vector<std::pair<std::size_t, std::thread::id>> seen;
  std::vector<bool> right_reactor(3, false);
  std::promise<void> all_ran;
  auto ran = all_ran.get_future();
  // Queued before start(): runs once each reactor's loop starts.
  pool.for_each([&](Reactor& reactor, std::size_t index) {
    std::lock_guard lock(mu);
    right_reactor[index] = &reactor == &pool.reactor(index) && reactor.running();
    seen.emplace_back(index, std::this_thread::get_id());
    if (seen.size() == 3) all_ran.set_value();
  });
  CHECK_FALSE(pool.started());
  pool.start();
  CHECK(pool.started());
  CHECK_THROWS_AS(pool.start(), std::logic_error);
  REQUIRE(ran.wait_for(std::chrono::duration<double>(test::kDeadline)) ==
          std::future_status::ready);
  pool.stop();
  join_within(pool);
  CHECK_FALSE(pool.started());

  std::set<std::size_t> indices;
  std::set<std::thread::id> threads;
  for (auto& [index, id] : seen) {
    indices.insert(index);
    threads.insert(id);
  }
  CHECK(indices == std::set<std::size_t>{0, 1, 2});
  CHECK(threads.size() == 3);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
  CHECK(right_reactor == std::vector<bool>{true, true, true});
}

TEST_CASE("pool_stop_from_a_reactor_thread_and_restart") {
  ReactorPool pool(2);
  std::atomic<int> timers_fired{0};
  // Each reactor's own timer; the first to fire stops the whole pool from inside a callback.
  for (std::size_t i = 0; i < pool.size(); ++i)
    pool.reactor(i).call_later(0.0, [&] {
      if (++timers_fired == 2) pool.stop();
    });
  pool.start();
  join_within(pool);  // returns only because a reactor thread called stop()
  CHECK(timers_fired == 2);

  // Joined pools start again, with their reactors' state intact.
  std::promise<void> again;
  auto ran = again.get_future();
  pool.reactor(1).call_soon([&] { again.set_value(); });
  pool.start();
  REQUIRE(ran.wait_for(std::chrono::duration<double>(test::kDeadline)) ==
          std::future_status::ready);
  pool.stop();
  join_within(pool);
}

TEST_CASE("pool_stop_when_not_started_is_a_no_op") {
  ReactorPool pool(1);
  pool.stop();  // nothing to stop, and nothing is left queued to stop a later start
  std::promise<void> ran;
  auto done = ran.get_future();
  pool.reactor(0).call_later(0.01, [&] { ran.set_value(); });
  pool.start();
  CHECK(done.wait_for(std::chrono::duration<double>(test::kDeadline)) ==
        std::future_status::ready);
  pool.stop();
  join_within(pool);
}

TEST_CASE("pool_destructor_stops_joins_and_drops_pending_work") {
  std::promise<void> running;
  auto up = running.get_future();
  auto token = std::make_shared<int>(0);
  {
    ReactorPool pool(2);
    pool.reactor(0).call_soon([&] { running.set_value(); });
    pool.reactor(1).call_later(3600, [token] { ++*token; });
    pool.start();
    REQUIRE(up.wait_for(std::chrono::duration<double>(test::kDeadline)) ==
            std::future_status::ready);
    CHECK(token.use_count() == 2);
  }  // must not hang, nor leave a joinable thread (that would std::terminate)
  CHECK(token.use_count() == 1);  // the pending call was dropped with its reactor
  CHECK(*token == 0);
}
