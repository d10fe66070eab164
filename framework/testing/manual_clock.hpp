#pragma once
/// \file
/// ManualClock: a Scheduler whose time moves only when a test says so.

#include <initializer_list>

#include "framework/delayed_call.hpp"

namespace torsion::testing {

/// A Scheduler for tests (Twisted's task.Clock): call_later, DelayedCall and anything
/// built on Scheduler behave exactly as on the Reactor, but time starts at 0 and moves
/// only through advance() and pump(). Nothing sleeps.
class ManualClock final : public Scheduler {
 public:
  ManualClock() { timers_.now = [this] { return now_; }; }

  /// The manual time, in seconds (starts at 0).
  double seconds() const override { return now_; }

  /// Moves time forward by `seconds` (>= 0), then runs every call that is due, in
  /// deadline order, including calls that those callbacks schedule for a time already
  /// reached (so a zero-delay call made while advancing runs within the same advance).
  /// Throws std::invalid_argument for a negative or NaN amount.
  void advance(double seconds);

  /// advance() once per step, in order.
  void pump(std::initializer_list<double> steps) {
    for (double step : steps) advance(step);
  }

  /// How many calls are pending.
  std::size_t pending_count() const noexcept { return timers_.size(); }

 private:
  double now_ = 0;
};

}  // namespace torsion::testing
