#pragma once
/// \file
/// ManualClock: a Scheduler whose time moves only when a test says so.

#include <cstddef>
#include <initializer_list>
#include <optional>

#include "framework/delayed_call.hpp"

namespace torsion::testing {

/// A Scheduler for tests (Twisted's task.Clock): call_later, DelayedCall and anything
/// built on Scheduler (time-outs, looping calls) behave as on the Reactor, but time starts
/// at 0 and moves only through advance(), pump(), advance_to_next() and jump(). Nothing
/// sleeps and nothing runs by itself: callbacks run only inside those four calls, on the
/// caller's thread.
///
/// The same rules as on the Reactor hold: calls due at the same time run in the order they
/// were scheduled; a call scheduled (or reset) while callbacks run waits for the next pass,
/// but a pass runs as long as something is due, so a zero-delay call made inside advance()
/// runs within that advance(); an exception thrown by a callback is logged and the other
/// calls still run; cancel/reset/delay work from inside callbacks.
///
/// advance() models a reactor that is never late: time stops at each due call's deadline,
/// so seconds() inside a callback is the time it was due, and a call that re-schedules
/// itself every second fires ten times in advance(10). jump() models a late reactor (a
/// loop blocked for a while): time moves first and every overdue call sees the new time.
///
/// Not thread-safe; the clock must outlive the code that holds its DelayedCalls only as
/// long as they use it (handles outliving the clock are harmless no-ops).
class ManualClock final : public Scheduler {
 public:
  /// Time starts at 0.
  ManualClock() {
    timers_.now = [this] { return now_; };
  }
  /// Drops pending calls without running them.
  ~ManualClock() override = default;

  /// The manual time, in seconds (starts at 0).
  double seconds() const override { return now_; }

  /// Moves time forward by `seconds` (>= 0), stopping at each pending call's deadline on
  /// the way to run the calls then due (with seconds() equal to that deadline), including
  /// calls those callbacks schedule for a time still within the advance. Ends with
  /// seconds() exactly `seconds` later than before. advance(0) runs what is due now.
  /// Throws std::invalid_argument for a negative, infinite or NaN amount, naming it.
  void advance(double seconds);

  /// advance() once per step, in order (Twisted's Clock.pump).
  void pump(std::initializer_list<double> steps) {
    for (double step : steps) advance(step);
  }

  /// Moves time to the earliest pending call's deadline and runs what is due then.
  /// Returns false (and leaves time alone) when nothing is pending.
  bool advance_to_next();

  /// Moves time forward by `seconds` at once, then runs every overdue call, all seeing the
  /// new time: what a reactor whose loop was blocked for that long would do. Throws
  /// std::invalid_argument like advance().
  void jump(double seconds);

  /// How many calls are pending.
  std::size_t pending_count() const noexcept { return timers_.size(); }

  /// The earliest pending deadline, or nothing when no call is pending.
  std::optional<double> next_deadline() const {
    if (timers_.empty()) return std::nullopt;
    return timers_.next_deadline();
  }

 private:
  void run_due();

  double now_ = 0;
};

}  // namespace torsion::testing
