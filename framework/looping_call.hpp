#pragma once
/// \file
/// LoopingCall: run a function every `interval` seconds on a Scheduler, Twisted's way.

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"

namespace torsion {

/// Calls a function repeatedly, at fixed points start + k * interval of the scheduler's
/// monotonic clock (so calls do not drift when the function is slow).
///
/// Missed intervals: if a call comes late (the loop was busy, or the function itself took
/// longer than the interval), the intervals it missed are skipped, not run in a burst;
/// the function taking a std::uint64_t hears how many intervals passed since its last
/// call (1 when on time), and missed() counts the skipped ones in total.
///
/// The function runs from the scheduler's loop (the first call runs inside start() when
/// `now` is true). If it throws, the loop stops and start()'s Deferred fails with that
/// exception. Not copyable or movable (the scheduler calls back into it); destroying it
/// stops it. Scheduler thread only; the scheduler must outlive it.
///
/// A function that returns a Deferred<void> (or a Task<void>, framework/task.hpp) is
/// waited for, as in Twisted: the next call is scheduled only when that Deferred fires,
/// for the first interval boundary strictly after that moment, and the count the next
/// call hears (and missed()) includes the intervals spent waiting. If the Deferred fails,
/// the loop stops and start()'s Deferred fails with its error. stop() while waiting (or
/// from inside the function) means no further call, and start()'s Deferred fires when the
/// awaited Deferred does, with its outcome; stop() does not cancel it (cancel it yourself
/// to end the wait sooner). A Deferred that never fires keeps the loop waiting forever.
/// The function object is kept alive until the awaited Deferred fires even if the
/// LoopingCall is destroyed first, so a coroutine lambda's captures stay valid.
class LoopingCall {
 public:
  /// `fn` is callable as `fn()` or `fn(std::uint64_t intervals)`, and returns void (any
  /// other plain value is ignored), or a Deferred<void> or Task<void> to wait for.
  template <class F>
    requires(std::is_invocable_v<F&> || std::is_invocable_v<F&, std::uint64_t>)
  LoopingCall(Scheduler& scheduler, F fn) : scheduler_(scheduler) {
    constexpr bool counted = std::is_invocable_v<F&, std::uint64_t>;
    using R = std::decay_t<typename ResultOf<F, counted>::type>;
    if constexpr (detail::IsDeferred<R>::value) {
      static_assert(std::is_void_v<typename R::value_type>,
                    "LoopingCall: a function may return Deferred<void> or Task<void>, "
                    "not a Deferred of a value");
      wait_fn_ = std::make_shared<WaitFunction>(
          [f = std::move(fn)](std::uint64_t n) mutable -> Deferred<void> {
            if constexpr (counted)
              return f(n);
            else
              return f();
          });
    } else if constexpr (counted) {
      fn_ = std::move(fn);
    } else {
      fn_ = [f = std::move(fn)](std::uint64_t) mutable { f(); };
    }
  }
  ~LoopingCall();
  LoopingCall(const LoopingCall&) = delete;
  LoopingCall& operator=(const LoopingCall&) = delete;

  /// Starts calling every `interval` seconds, the first time now (inside this call) if
  /// `now`, else after one interval. Returns a Deferred that fires when stop() is called
  /// or fails with the function's exception (or its Deferred's error). Throws
  /// std::invalid_argument for an interval that is zero, negative, infinite or NaN (naming
  /// the value), std::logic_error if it is already running or still waiting for the
  /// Deferred of the last run.
  Deferred<void> start(double interval, bool now = true);
  /// Stops: no further calls; start()'s Deferred fires (when the function's Deferred
  /// does, if the loop is waiting for one). A no-op when not running. Safe from inside
  /// the function.
  void stop();

  /// True between start() and stop() (or the function throwing, or its Deferred failing).
  bool running() const noexcept { return running_; }
  /// True from a call of a Deferred-returning function until its Deferred fires, also
  /// after stop(); start() throws std::logic_error meanwhile.
  bool waiting() const noexcept { return waiting_; }
  /// The interval of the current (or last) run; 0 before the first start().
  double interval() const noexcept { return interval_; }
  /// How many times the function has been called since start().
  std::uint64_t calls() const noexcept { return calls_; }
  /// How many intervals were skipped since start() because calls came late.
  std::uint64_t missed() const noexcept { return missed_; }

 private:
  using WaitFunction = std::function<Deferred<void>(std::uint64_t)>;
  template <class F, bool Counted>
  struct ResultOf {
    using type = std::invoke_result_t<F&>;
  };
  template <class F>
  struct ResultOf<F, true> {
    using type = std::invoke_result_t<F&, std::uint64_t>;
  };

  void fire();
  void call_and_wait(std::uint64_t count);
  void waited(const Outcome<void>& outcome, Deferred<void> done);
  void schedule_next(std::int64_t after_index);
  std::int64_t interval_index(double t) const;

  Scheduler& scheduler_;
  std::function<void(std::uint64_t)> fn_;  // the void form, or
  std::shared_ptr<WaitFunction> wait_fn_;  // the Deferred/Task form
  std::shared_ptr<LoopingCall*> self_ = std::make_shared<LoopingCall*>(this);  // null once gone
  DelayedCall call_;
  Deferred<void> done_;
  double interval_ = 0;
  double start_time_ = 0;
  std::int64_t last_index_ = 0;  // interval index of the last call
  std::uint64_t calls_ = 0;
  std::uint64_t missed_ = 0;
  bool running_ = false;
  bool waiting_ = false;
};

}  // namespace torsion
