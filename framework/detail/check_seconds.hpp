#pragma once
// Private: the one check on a number of seconds the API takes (a delay, a period, a
// time-out): not negative and not NaN.

#include <cmath>
#include <stdexcept>
#include <string>

namespace torsion::detail {

// Throws std::invalid_argument "<what> must be >= 0 seconds, got <seconds>" unless
// `seconds` is zero or more.
inline void check_seconds(double seconds, const std::string& what) {
  if (std::isnan(seconds) || seconds < 0)
    throw std::invalid_argument(what + " must be >= 0 seconds, got " + std::to_string(seconds));
}

}  // namespace torsion::detail
