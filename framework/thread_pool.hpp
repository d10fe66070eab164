#pragma once
/// \file
/// ThreadPool: run blocking work on worker threads, get the result as a Deferred on the
/// reactor's thread.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// What ThreadPool::stop does with jobs that have not started.
enum class ShutdownMode {
  wait,    ///< run every queued job, then stop
  cancel,  ///< drop the queued jobs: their Deferreds fail with CancelledError
};

/// A fixed set of worker threads fed from one FIFO queue. Work goes in with
/// defer_to_thread(fn); `fn` runs on a worker and its result (value or exception) comes
/// back to the reactor's thread through Reactor::call_from_thread, where the returned
/// Deferred fires. So results arrive only while the reactor runs.
///
/// Threads: defer_to_thread, stop and the destructor are for the reactor's thread; `fn`
/// must not touch reactor objects (use reactor.call_from_thread for that). Jobs may run
/// concurrently with each other and with the reactor.
///
/// Shutdown: stop(wait) lets queued jobs run; stop(cancel) drops them (their Deferreds
/// fail with CancelledError, at once). Either way stop blocks until running jobs return
/// (a job cannot be interrupted) and joins the threads. The destructor is stop(cancel).
/// Cancelling one job's Deferred drops the job if it has not started; a started job runs
/// to its end and its result is discarded.
class ThreadPool {
 public:
  /// Starts `threads` workers. Throws std::invalid_argument for 0.
  explicit ThreadPool(Reactor& reactor, std::size_t threads = default_size());
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Queues `fn()` for a worker; returns a Deferred of its result, fired on the reactor's
  /// thread. After stop(), returns a Deferred already failed with CancelledError.
  template <class F>
  auto defer_to_thread(F fn) -> Deferred<std::invoke_result_t<F&>>;

  /// Stops the pool; see the class comment. Idempotent. Blocks until workers exit.
  void stop(ShutdownMode mode = ShutdownMode::wait);

  /// The number of worker threads.
  std::size_t size() const noexcept { return size_; }
  /// Jobs queued and not started.
  std::size_t queued() const;
  /// Jobs running now.
  std::size_t busy() const noexcept { return busy_.load(); }
  /// True until stop().
  bool running() const noexcept { return !stopping_; }

  /// std::thread::hardware_concurrency(), at least 1.
  static std::size_t default_size() noexcept;

 private:
  struct Job {
    std::function<void()> run;     // on a worker
    std::function<void()> cancel;  // on the reactor thread, when dropped unstarted
    std::shared_ptr<std::atomic<bool>> cancelled;
  };
  void enqueue(Job job);
  void work();

  Reactor& reactor_;
  std::size_t size_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> busy_{0};
  bool stopping_ = false;  // reactor thread and, under mutex_, workers
  bool drain_ = true;      // under mutex_
};

template <class F>
auto ThreadPool::defer_to_thread(F fn) -> Deferred<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  Deferred<R> d([cancelled](Deferred<R>&) { cancelled->store(true); });
  if (stopping_) {
    d.errback(CancelledError("ThreadPool: the pool is stopped"));
    return d;
  }
  auto state = d.state();
  Reactor* reactor = &reactor_;
  // The function object is shared so that Job stays copyable (std::function).
  auto work = std::make_shared<F>(std::move(fn));
  Job job;
  job.cancelled = cancelled;
  job.run = [reactor, state, work, cancelled]() mutable {
    if (cancelled->load()) {
      // Let the last reference to the Deferred go on the reactor's thread.
      reactor->call_from_thread([state = std::move(state)] {});
      return;
    }
    auto outcome = std::make_shared<std::optional<Outcome<R>>>();
    try {
      if constexpr (std::is_void_v<R>) {
        (*work)();
        outcome->emplace(Outcome<R>::success());
      } else {
        outcome->emplace(Outcome<R>::success((*work)()));
      }
    } catch (...) {
      outcome->emplace(Outcome<R>::failure(std::current_exception()));
    }
    work.reset();  // destroy the user's function on the worker, as it ran there
    reactor->call_from_thread([state = std::move(state), outcome] {
      state->fire(std::move(**outcome));  // ignored if the Deferred was cancelled
    });
  };
  job.cancel = [weak = std::weak_ptr<detail::DeferredState<R>>(state)] {
    if (auto s = weak.lock())
      s->fire(Outcome<R>::failure(
        std::make_exception_ptr(CancelledError("ThreadPool: stopped before the job started"))));
  };
  enqueue(std::move(job));
  return d;
}

}  // namespace torsion
