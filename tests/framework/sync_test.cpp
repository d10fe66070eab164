#include "framework/sync.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/task.hpp"
#include "framework/task_group.hpp"
#include "framework/testing/manual_clock.hpp"

using namespace torsion;
using torsion::testing::ManualClock;

TEST_CASE("queue_between_a_producer_and_a_consumer_coroutine") {
  ManualClock clock;
  Queue<int> q(2);
  std::vector<std::string> log;
  auto producer = [](Queue<int>& queue, std::vector<std::string>& l) -> Task<void> {
    for (int i = 1; i <= 4; ++i) {
      co_await queue.put(i);  // waits while two items are queued
      l.push_back("put " + std::to_string(i));
    }
    co_await queue.put(0);  // end marker
  }(q, log);
  CHECK(log == std::vector<std::string>{"put 1", "put 2"});  // back-pressure: 3 waits
  CHECK(q.full());
  CHECK(q.waiting_puts() == 1);
  auto consumer = [](ManualClock& c, Queue<int>& queue, std::vector<std::string>& l) -> Task<int> {
    int sum = 0;
    for (;;) {
      int v = co_await queue.get();
      if (v == 0) break;
      l.push_back("got " + std::to_string(v));
      sum += v;
      co_await sleep(c, 1);
    }
    co_return sum;
  }(clock, q, log);
  CHECK(log == std::vector<std::string>{"put 1", "put 2", "put 3", "got 1"});  // the get woke the put
  for (int i = 0; i < 4; ++i) clock.advance(1);
  REQUIRE(consumer.done());
  CHECK(producer.done());
  int sum = 0;
  consumer.deferred().add_callback([&](int s) { sum = s; });
  CHECK(sum == 10);
  CHECK(q.empty());
}

TEST_CASE("queue_as_deferreds_like_deferred_queue") {
  Queue<std::string> q(1);
  std::string got;
  q.get().add_callback([&](std::string s) { got = s; });  // waits
  CHECK(q.waiting_gets() == 1);
  Deferred<void> put = q.put("hello");  // straight to the waiting get
  CHECK(put.called());
  CHECK(got == "hello");
  CHECK(q.empty());
  CHECK(q.try_put(std::string("a")));
  CHECK_FALSE(q.try_put(std::string("b")));
  CHECK(q.try_get() == "a");
  CHECK_FALSE(q.try_get());
  CHECK_THROWS_AS(Queue<int>(0), std::invalid_argument);
}

TEST_CASE("cancelling_a_waiting_get_removes_it_and_takes_nothing") {
  Queue<int> q(4);
  Deferred<int> first = q.get();
  int second = 0;
  q.get().add_callback([&](int v) { second = v; });
  CHECK(q.waiting_gets() == 2);
  CHECK(first.cancel());
  CHECK(q.waiting_gets() == 1);
  q.put(5).add_callback([] {});
  CHECK(second == 5);  // the item went to the get that still waited
  first.add_errback([](std::exception_ptr e) { CHECK(error_is<CancelledError>(e)); return 0; });

  // a cancelled coroutine's get: the next item stays in the queue
  auto t = [](Queue<int>& queue) -> Task<int> { co_return co_await queue.get(); }(q);
  t.cancel();
  REQUIRE(t.done());
  q.put(6).add_callback([] {});
  CHECK(q.size() == 1);
  CHECK(q.try_get() == 6);
  t.deferred().add_errback([](std::exception_ptr) { return 0; });
}

TEST_CASE("cancelling_a_waiting_put_drops_its_item") {
  Queue<int> q(1);
  q.put(1).add_callback([] {});
  Deferred<void> waiting = q.put(2);
  CHECK_FALSE(waiting.called());
  waiting.cancel();
  CHECK(q.waiting_puts() == 0);
  CHECK(q.try_get() == 1);
  CHECK_FALSE(q.try_get());
  waiting.add_errback([](std::exception_ptr) {});
}

TEST_CASE("queue_limits_its_waiters") {
  Queue<int> q(1, 2);
  Deferred<int> a = q.get(), b = q.get();
  std::string error;
  q.get().add_errback([&](std::exception_ptr e) {
    error = describe_error(e);
    return 0;
  });
  CHECK(error == "Queue::get: 2 already waiting");
  a.cancel();
  b.cancel();
  a.add_errback([](std::exception_ptr) { return 0; });
  b.add_errback([](std::exception_ptr) { return 0; });
}

TEST_CASE("lock_serialises_coroutines_and_unlocks_with_its_permit") {
  ManualClock clock;
  Lock lock;
  std::vector<std::string> log;
  auto worker = [](ManualClock& c, Lock& l, std::string name,
                   std::vector<std::string>& out) -> Task<void> {
    Permit held = co_await l.acquire_permit();
    out.push_back(name + " in");
    co_await sleep(c, 1);
    out.push_back(name + " out");
  };
  TaskGroup group;
  group.spawn(worker(clock, lock, "a", log));
  group.spawn(worker(clock, lock, "b", log));
  CHECK(lock.locked());
  CHECK(lock.waiting() == 1);
  clock.advance(1);
  clock.advance(1);
  CHECK(log == std::vector<std::string>{"a in", "a out", "b in", "b out"});
  CHECK_FALSE(lock.locked());
  CHECK_THROWS_AS(lock.release(), std::logic_error);
  std::string outcome;
  group.join().add_both([&](Outcome<void> o) { outcome = o.ok() ? "ok" : "failed"; });
  CHECK(outcome == "ok");
}

TEST_CASE("lock_run_releases_after_a_failure_like_deferred_lock") {
  Lock lock;
  Deferred<int> inner;
  std::string first;
  lock.run([&] { return inner; }).add_both([&](Outcome<int> o) {
    first = o.ok() ? "ok" : describe_error(o.error());
  });
  CHECK(lock.locked());
  int second = 0;
  lock.run([] { return 2; }).add_callback([&](int v) { second = v; });
  CHECK(second == 0);
  inner.errback(std::runtime_error("boom"));
  CHECK(first == "boom");
  CHECK(second == 2);
  CHECK_FALSE(lock.locked());
}

TEST_CASE("cancelling_a_waiting_acquire_takes_no_permit") {
  Semaphore sem(1);
  sem.acquire().add_callback([] {});
  Deferred<void> waiting = sem.acquire();
  waiting.cancel();
  CHECK(sem.waiting() == 0);
  sem.release();
  CHECK(sem.available() == 1);  // the permit was not handed to the cancelled waiter
  waiting.add_errback([](std::exception_ptr e) { CHECK(error_is<CancelledError>(e)); });
}

TEST_CASE("semaphore_bounds_concurrency") {
  ManualClock clock;
  Semaphore sem(2);
  int running = 0, peak = 0;
  TaskGroup group;
  for (int i = 0; i < 5; ++i)
    group.spawn([&clock, &sem, &running, &peak]() -> Task<void> {
      Permit p = co_await sem.acquire_permit();
      peak = std::max(peak, ++running);
      co_await sleep(clock, 1);
      --running;
    });
  for (int i = 0; i < 3; ++i) clock.advance(1);
  CHECK(peak == 2);
  CHECK(group.size() == 0);
  CHECK(sem.available() == 2);
  group.join().add_callback([] {});
}

TEST_CASE("event_wakes_every_waiter_in_both_styles") {
  Event ev;
  int woken = 0;
  ev.wait().add_callback([&] { ++woken; });
  auto t = [](Event& e, int& w) -> Task<void> {
    co_await e.wait();
    ++w;
  }(ev, woken);
  Deferred<void> cancelled = ev.wait();
  cancelled.cancel();
  CHECK_FALSE(ev.is_set());
  ev.set();
  CHECK(woken == 2);
  CHECK(t.done());
  CHECK(ev.wait().called());
  ev.clear();
  CHECK_FALSE(ev.wait().called());
  cancelled.add_errback([](std::exception_ptr) {});
}

TEST_CASE("destroying_a_queue_destroys_the_coroutines_waiting_on_it") {
  struct Flag {
    bool* flag;
    ~Flag() { *flag = true; }
  };
  bool destroyed = false;
  std::optional<Task<int>> t;
  {
    Queue<int> q(1);
    t = [](Queue<int>& queue, bool* f) -> Task<int> {
      Flag guard{f};
      co_return co_await queue.get();
    }(q, &destroyed);
    CHECK_FALSE(destroyed);
  }
  CHECK(destroyed);
  CHECK_FALSE(t->done());
}

TEST_CASE("a_permit_that_outlives_its_semaphore_releases_nothing") {
  std::optional<Permit> kept;
  {
    Semaphore sem(1);
    sem.acquire_permit().add_callback([&](Permit p) { kept.emplace(std::move(p)); });
    CHECK(sem.available() == 0);
    REQUIRE(kept);
    CHECK(static_cast<bool>(*kept));
  }
  CHECK_FALSE(static_cast<bool>(*kept));
  kept->release();
}
