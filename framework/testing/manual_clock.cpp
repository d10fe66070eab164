#include "framework/testing/manual_clock.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace torsion::testing {

void ManualClock::advance(double seconds) {
  if (std::isnan(seconds) || seconds < 0)
    throw std::invalid_argument("ManualClock::advance: amount must be >= 0, got " +
                                std::to_string(seconds));
  now_ += seconds;
  while (timers_.run_due(now_) > 0) {
  }
}

}  // namespace torsion::testing
