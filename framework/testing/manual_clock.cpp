#include "framework/testing/manual_clock.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace torsion::testing {
namespace {

void check_amount(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds < 0)
    throw std::invalid_argument(std::string(what) + ": amount must be a finite number >= 0, got " +
                                std::to_string(seconds));
}

}  // namespace

void ManualClock::run_due() {
  // One pass runs what was due when it began; callbacks may schedule more calls that are
  // already due (zero delay), which the next pass picks up, as the reactor's next turn would.
  while (timers_.run_due(now_) > 0) {
  }
}

void ManualClock::advance(double seconds) {
  check_amount(seconds, "ManualClock::advance");
  const double target = now_ + seconds;
  run_due();
  while (!timers_.empty() && timers_.next_deadline() <= target) {
    // A call moved earlier with delay() may be overdue: never move time backwards.
    if (timers_.next_deadline() > now_) now_ = timers_.next_deadline();
    run_due();
  }
  now_ = target;
}

bool ManualClock::advance_to_next() {
  if (timers_.empty()) return false;
  if (timers_.next_deadline() > now_) now_ = timers_.next_deadline();
  run_due();
  return true;
}

void ManualClock::jump(double seconds) {
  check_amount(seconds, "ManualClock::jump");
  now_ += seconds;
  run_due();
}

}  // namespace torsion::testing
