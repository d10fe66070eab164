#pragma once
/// \file
/// Task<T>: C++20 coroutines on the reactor, interoperating with Deferred<T>.
///
/// A function returning Task<T> is a coroutine that may `co_await`:
///  - a Deferred<U> (gives the U, or throws its error),
///  - another Task<U>,
///  - sleep(scheduler, seconds),
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
///  - cancel() cancels what the coroutine is awaiting at that moment: that operation then
///    throws CancelledError into the coroutine (which may catch it). If the coroutine
///    does not finish in that call, the Task fails with CancelledError at once and what
///    the coroutine returns later is ignored.
///  - If what a suspended coroutine waits for is destroyed without ever firing, the
///    coroutine frame is destroyed too (its locals' destructors run) and its Task never
///    fires; tasks waiting on that Task are destroyed in turn. A coroutine keeps itself
///    alive while something can still resume it, so end (or cancel) tasks before
///    destroying their reactor.
/// Reactor thread only.

#include <coroutine>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "framework/deferred.hpp"

namespace torsion {

namespace detail {

class TaskPromiseBase {
 public:
  std::suspend_never initial_suspend() noexcept { return {}; }
  std::suspend_never final_suspend() noexcept { return {}; }
  // Called by awaiters when the coroutine suspends on them.
  void set_awaited_cancel(UniqueFunction<void()> cancel) { awaited_cancel_ = std::move(cancel); }

 protected:
  void cancel_awaited() {
    auto cancel = std::move(awaited_cancel_);
    awaited_cancel_ = nullptr;
    if (cancel) cancel();
  }
  UniqueFunction<void()> awaited_cancel_;
};

template <class T>
class TaskPromiseOf : public TaskPromiseBase {
 public:
  TaskPromiseOf() : state_(std::make_shared<DeferredState<T>>()) {
    state_->canceller_ = [this](Deferred<T>&) { cancel_awaited(); };
  }
  TaskPromiseOf(const TaskPromiseOf&) = delete;
  TaskPromiseOf& operator=(const TaskPromiseOf&) = delete;
  ~TaskPromiseOf() {
    state_->canceller_ = nullptr;
    // Destroyed before finishing: whoever waits for this task can never be resumed.
    if (!state_->fired()) state_->drop_consumer();
  }
  Task<T> get_return_object();
  void unhandled_exception() { state_->fire(Outcome<T>::failure(std::current_exception())); }

 protected:
  StatePtr<T> state_;
};

template <class T>
class TaskPromise : public TaskPromiseOf<T> {
 public:
  template <class U = T>
    requires std::is_constructible_v<T, U &&>
  void return_value(U&& value) {
    this->state_->fire(Outcome<T>::success(T(std::forward<U>(value))));
  }
};

template <>
class TaskPromise<void> : public TaskPromiseOf<void> {
 public:
  void return_void() { state_->fire(Outcome<void>::success()); }
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

}  // namespace torsion
