#pragma once
/// \file
/// Task<T>: C++20 coroutines on the reactor, interoperating with Deferred<T>.
///
/// A function returning Task<T> is a coroutine that may `co_await`:
///  - a Deferred<U> (gives the U, or throws its error),
///  - another Task<U>,
///  - sleep(scheduler, seconds), next_turn(reactor),
///  - the operations of a Stream (framework/stream.hpp) and connect_stream
///    (transports/connect_stream.hpp).
///
/// Model (Twisted's inlineCallbacks, spelled co_await):
///  - A Task starts running at once, in the call that creates it, up to its first
///    suspension; it then runs on from whatever fires what it waits for (a timer, the
///    reactor loop for streams). The Task object is only a handle: dropping it does not
///    stop the coroutine.
///  - A Task is a Deferred underneath: `deferred()` gives the Deferred<T> that fires with
///    what the coroutine returns or throws, and `co_await`ing a Deferred turns it into a
///    step of a Task; as_task(d) wraps a Deferred in a Task. A Task has one consumer,
///    like a Deferred.
///  - An exception that escapes the coroutine fails the Task; awaiting it rethrows it.
///    A failed Task nobody consumed is logged as an unhandled Deferred error.
///  - cancel() asks the coroutine to stop (asyncio's Task.cancel): it cancels what the
///    coroutine is awaiting at that moment, and that operation throws CancelledError into
///    the coroutine; if the coroutine is running rather than suspended, its next
///    co_await that suspends throws CancelledError instead. The coroutine may catch it,
///    clean up (awaiting again) and return or rethrow: the Task finishes only when the
///    coroutine does, with what it returns or throws, so whoever awaits a cancelled Task
///    resumes after the coroutine's locals are gone (framework/task_group.hpp relies on
///    it). cancel() may be called again to cancel a clean-up that is awaited.
///  - The Task fires after the coroutine's locals are destroyed (not inside co_return).
///  - If what a suspended coroutine waits for is destroyed without ever firing, the
///    coroutine frame is destroyed too (its locals' destructors run) and its Task never
///    fires; tasks waiting on that Task are destroyed in turn. A coroutine keeps itself
///    alive while something can still resume it, so end (or cancel) tasks before
///    destroying their reactor.
/// Reactor thread only.

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"

namespace torsion {

namespace detail {

class TaskPromiseBase {
 public:
  std::suspend_never initial_suspend() noexcept { return {}; }
  // Called by awaiters when the coroutine suspends on them: `cancel` cancels what it
  // awaits and says whether that was still pending. A cancel requested while the
  // coroutine ran is delivered here, to the operation it now awaits.
  void set_awaited_cancel(UniqueFunction<bool()> cancel) {
    awaited_cancel_ = std::move(cancel);
    if (cancel_pending_) {
      cancel_pending_ = false;
      cancel_awaited();
    }
  }

 protected:
  bool cancel_awaited() {
    auto cancel = std::move(awaited_cancel_);
    awaited_cancel_ = nullptr;
    return cancel && cancel();
  }
  // Task::cancel: the awaited operation now, or the next one if the coroutine runs.
  void request_cancel() {
    if (!cancel_awaited()) cancel_pending_ = true;
  }
  UniqueFunction<bool()> awaited_cancel_;
  bool cancel_pending_ = false;
};

template <class T>
class TaskPromiseOf : public TaskPromiseBase {
 public:
  TaskPromiseOf() : state_(std::make_shared<DeferredState<T>>()) {
    state_->cancel_waits_ = true;  // the Task fires when the coroutine ends
    arm_canceller();
  }
  TaskPromiseOf(const TaskPromiseOf&) = delete;
  TaskPromiseOf& operator=(const TaskPromiseOf&) = delete;
  ~TaskPromiseOf() {
    state_->canceller_ = nullptr;
    // Destroyed before finishing: whoever waits for this task can never be resumed.
    if (!state_->fired()) state_->drop_consumer();
  }
  Task<T> get_return_object();
  void unhandled_exception() { result_.emplace(Outcome<T>::failure(std::current_exception())); }

  // Fires the Task once the body's locals are gone, then lets the frame be destroyed.
  struct FinalAwaiter {
    TaskPromiseOf* promise;
    bool await_ready() noexcept {
      promise->finish();
      return true;
    }
    void await_suspend(std::coroutine_handle<>) noexcept {}
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return FinalAwaiter{this}; }

 protected:
  void arm_canceller() {
    state_->canceller_ = [this](Deferred<T>&) {
      arm_canceller();  // a later cancel() reaches a clean-up the coroutine awaits
      request_cancel();
    };
  }
  void finish() noexcept {
    if (result_ && !state_->fired()) state_->fire(std::move(*result_));
  }
  StatePtr<T> state_;
  std::optional<Outcome<T>> result_;
};

template <class T>
class TaskPromise : public TaskPromiseOf<T> {
 public:
  template <class U = T>
    requires std::is_constructible_v<T, U &&>
  void return_value(U&& value) {
    this->result_.emplace(Outcome<T>::success(T(std::forward<U>(value))));
  }
};

template <>
class TaskPromise<void> : public TaskPromiseOf<void> {
 public:
  void return_void() { result_.emplace(Outcome<void>::success()); }
};

}  // namespace detail

/// The handle on a running coroutine; see the file comment. Copies are handles on the
/// same task.
template <class T>
class Task {
 public:
  /// For the compiler: makes a function returning Task<T> a coroutine.
  using promise_type = detail::TaskPromise<T>;
  /// The type of the coroutine's result.
  using value_type = T;

  /// The Deferred that fires with the coroutine's result or error (Task -> Deferred).
  Deferred<T> deferred() const { return d_; }
  /// Same as deferred(), so a Task can be passed where a Deferred is expected.
  operator Deferred<T>() const { return d_; }  // NOLINT: implicit on purpose

  /// True once the coroutine has returned or thrown (or the task was cancelled).
  bool done() const noexcept { return d_.called(); }
  /// Cancels what the coroutine awaits; see the file comment. Returns false if the task
  /// had already finished.
  bool cancel() { return d_.cancel(); }

  /// Awaits the task: its value, or its exception rethrown.
  auto operator co_await() const& { return d_.operator co_await(); }
  /// As above, for an rvalue Task.
  auto operator co_await() && { return std::move(d_).operator co_await(); }

 private:
  friend class detail::TaskPromiseOf<T>;
  explicit Task(Deferred<T> d) : d_(std::move(d)) {}
  Deferred<T> d_;
};

template <class T>
Task<T> detail::TaskPromiseOf<T>::get_return_object() {
  return Task<T>(Deferred<T>(state_));
}

/// Deferred -> Task: a task that finishes with `d`'s result; cancelling it cancels `d`.
template <class T>
[[nodiscard]] Task<T> as_task(Deferred<T> d) {
  co_return co_await std::move(d);
}
/// as_task for Deferred<void>.
[[nodiscard]] inline Task<void> as_task(Deferred<void> d) { co_await std::move(d); }

/// A Deferred<void> that fires `seconds` from now on `scheduler` (the reactor or a
/// manual clock): `co_await sleep(reactor, 0.5);`. Cancelling it cancels the timer (the
/// awaiting coroutine gets CancelledError). Throws std::invalid_argument for a negative
/// or NaN delay.
[[nodiscard]] inline Deferred<void> sleep(Scheduler& scheduler, double seconds) {
  return defer_later(scheduler, seconds, [] {});
}

/// A Deferred<void> that fires from the reactor's loop on its next turn (call_soon at
/// `priority`), with no timer: `co_await next_turn(reactor);` lets I/O and the callbacks
/// already queued run before the coroutine goes on (asyncio's `await asyncio.sleep(0)`).
/// Never fires inside this call. Cancelling it makes the queued call do nothing.
[[nodiscard]] inline Deferred<void> next_turn(Reactor& reactor, Priority priority = Priority::normal) {
  Deferred<void> d;
  reactor.call_soon([d]() mutable { d.callback(); }, priority);
  return d;
}

}  // namespace torsion
