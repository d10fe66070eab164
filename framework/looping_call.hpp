#pragma once
/// \file
/// LoopingCall: run a function every `interval` seconds on a Scheduler, Twisted's way.

#include <cstdint>
#include <functional>
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
class LoopingCall {
 public:
  /// `fn` is callable as `fn()` or `fn(std::uint64_t intervals)`.
  template <class F>
    requires(std::is_invocable_v<F&> || std::is_invocable_v<F&, std::uint64_t>)
  LoopingCall(Scheduler& scheduler, F fn) : scheduler_(scheduler) {
    if constexpr (std::is_invocable_v<F&, std::uint64_t>)
      fn_ = std::move(fn);
    else
      fn_ = [f = std::move(fn)](std::uint64_t) mutable { f(); };
  }
  ~LoopingCall();
  LoopingCall(const LoopingCall&) = delete;
  LoopingCall& operator=(const LoopingCall&) = delete;

  /// Starts calling every `interval` seconds, the first time now (inside this call) if
  /// `now`, else after one interval. Returns a Deferred that fires when stop() is called
  /// or fails with the function's exception. Throws std::invalid_argument for an interval
  /// that is zero, negative, infinite or NaN (naming the value), std::logic_error if it is
  /// already running.
  Deferred<void> start(double interval, bool now = true);
  /// Stops: no further calls; start()'s Deferred fires. A no-op when not running. Safe
  /// from inside the function.
  void stop();

  /// True between start() and stop() (or the function throwing).
  bool running() const noexcept { return running_; }
  /// The interval of the current (or last) run; 0 before the first start().
  double interval() const noexcept { return interval_; }
  /// How many times the function has been called since start().
  std::uint64_t calls() const noexcept { return calls_; }
  /// How many intervals were skipped since start() because calls came late.
  std::uint64_t missed() const noexcept { return missed_; }

 private:
  void fire();
  void schedule_next(std::int64_t after_index);
  std::int64_t interval_index(double t) const;

  Scheduler& scheduler_;
  std::function<void(std::uint64_t)> fn_;
  DelayedCall call_;
  Deferred<void> done_;
  double interval_ = 0;
  double start_time_ = 0;
  std::int64_t last_index_ = 0;  // interval index of the last call
  std::uint64_t calls_ = 0;
  std::uint64_t missed_ = 0;
  bool running_ = false;
};

}  // namespace torsion
