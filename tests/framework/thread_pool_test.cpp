#include "framework/thread_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "framework/task.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

// A gate the test opens to let blocked jobs finish (no sleeping).
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lock(m);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(m);
      open = true;
    }
    cv.notify_all();
  }
};

}  // namespace

TEST_CASE("thread_pool_result_arrives_on_the_reactor_thread") {
  Reactor reactor;
  ThreadPool pool(reactor, 2);
  CHECK(pool.size() == 2);
  const auto reactor_thread = std::this_thread::get_id();
  std::thread::id worker;
  std::thread::id callback_thread;
  int got = 0;
  pool.defer_to_thread([&] {
        worker = std::this_thread::get_id();
        return 6 * 7;
      })
      .add_callback([&](int v) {
        callback_thread = std::this_thread::get_id();
        got = v;
      });
  wait_for(reactor, [&] { return got != 0; }, "the job's result");
  CHECK(got == 42);
  CHECK(worker != reactor_thread);
  CHECK(callback_thread == reactor_thread);
}

TEST_CASE("thread_pool_exception_becomes_errback") {
  Reactor reactor;
  ThreadPool pool(reactor, 1);
  std::string error;
  pool.defer_to_thread([]() -> int { throw std::runtime_error("worker failed"); })
      .add_errback([&](std::exception_ptr e) {
        error = describe_error(e);
        return 0;
      });
  wait_for(reactor, [&] { return !error.empty(); }, "the errback");
  CHECK(error == "worker failed");
}

TEST_CASE("thread_pool_runs_jobs_in_parallel_and_all_complete") {
  Reactor reactor;
  ThreadPool pool(reactor, 4);
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  Gate gate;
  std::vector<Deferred<int>> jobs;
  for (int i = 0; i < 16; ++i)
    jobs.push_back(pool.defer_to_thread([&, i] {
      const int now = ++running;
      int old = peak.load();
      while (now > old && !peak.compare_exchange_weak(old, now)) {
      }
      if (i < 4) gate.wait();  // the first four block until all four run together
      --running;
      return i;
    }));
  std::vector<int> results;
  gather(std::move(jobs)).add_callback([&](std::vector<int> v) { results = v; });
  wait_for(reactor, [&] { return peak.load() == 4; }, "four jobs at once");
  gate.release();
  wait_for(reactor, [&] { return results.size() == 16; }, "all results");
  for (int i = 0; i < 16; ++i) CHECK(results[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("thread_pool_stop_wait_runs_queued_jobs") {
  Reactor reactor;
  ThreadPool pool(reactor, 1);
  std::atomic<int> ran{0};
  int delivered = 0;
  for (int i = 0; i < 5; ++i) pool.defer_to_thread([&] { ++ran; }).add_callback([&] { ++delivered; });
  pool.stop(ShutdownMode::wait);
  CHECK(ran.load() == 5);
  CHECK_FALSE(pool.running());
  wait_for(reactor, [&] { return delivered == 5; }, "the five results");
  bool refused = false;
  pool.defer_to_thread([] {}).add_errback([&](std::exception_ptr e) {
    refused = error_is<CancelledError>(e);
  });
  CHECK(refused);
}

TEST_CASE("thread_pool_stop_cancel_drops_queued_jobs") {
  Reactor reactor;
  ThreadPool pool(reactor, 1);
  Gate gate;
  std::atomic<bool> first_started{false};
  std::atomic<int> ran{0};
  int first_result = 0;
  pool.defer_to_thread([&] {
        first_started = true;
        gate.wait();
        ++ran;
        return 1;
      })
      .add_callback([&](int v) { first_result = v; });
  int cancelled = 0;
  for (int i = 0; i < 3; ++i)
    pool.defer_to_thread([&] { ++ran; }).add_errback([&](std::exception_ptr e) {
      if (error_is<CancelledError>(e)) ++cancelled;
    });
  wait_for(reactor, [&] { return first_started.load(); }, "the first job to start");
  CHECK(pool.queued() == 3);
  std::thread opener([&] { gate.release(); });  // stop() blocks on the running job
  pool.stop(ShutdownMode::cancel);
  opener.join();
  CHECK(cancelled == 3);  // at once, from stop()
  CHECK(ran.load() == 1);
  wait_for(reactor, [&] { return first_result == 1; }, "the running job's result");
}

TEST_CASE("thread_pool_cancel_one_queued_job") {
  Reactor reactor;
  ThreadPool pool(reactor, 1);
  Gate gate;
  std::atomic<bool> started{false};
  bool first_done = false;
  pool.defer_to_thread([&] {
        started = true;
        gate.wait();
      })
      .add_callback([&] { first_done = true; });
  std::atomic<bool> second_ran{false};
  auto second = pool.defer_to_thread([&] { second_ran = true; });
  wait_for(reactor, [&] { return started.load(); }, "the first job to start");
  CHECK(second.cancel());
  gate.release();
  wait_for(reactor, [&] { return first_done; }, "the first job");
  pool.stop();
  CHECK_FALSE(second_ran.load());
  bool cancelled = false;
  second.add_errback([&](std::exception_ptr e) { cancelled = error_is<CancelledError>(e); });
  CHECK(cancelled);
}

TEST_CASE("thread_pool_awaited_from_a_task") {
  Reactor reactor;
  ThreadPool pool(reactor, 2);
  auto t = [](ThreadPool& p) -> Task<long> {
    long a = co_await p.defer_to_thread([] { return 20L; });
    long b = co_await p.defer_to_thread([] { return 22L; });
    co_return a + b;
  }(pool);
  long got = 0;
  t.deferred().add_callback([&](long v) { got = v; });
  wait_for(reactor, [&] { return got != 0; }, "the task");
  CHECK(got == 42);
}

TEST_CASE("thread_pool_rejects_zero_size") {
  Reactor reactor;
  CHECK_THROWS_WITH_AS(ThreadPool(reactor, 0), doctest::Contains("got 0"), std::invalid_argument);
}
