#pragma once
/// \file
/// Running a real Reactor in a test until a condition holds, with a deadline and a clear
/// message when it does not. Independent of any test framework: tests/support/wait.hpp
/// wraps it for doctest.

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "framework/reactor.hpp"

namespace torsion::testing {

/// The default deadline, in seconds: generous enough for a loaded CI machine under
/// sanitizers; a passing test never waits for it, since the loop returns as soon as the
/// condition holds.
inline constexpr double default_deadline = 20.0;

/// What a wait came to: ok, or why not, in words that name what was awaited.
struct WaitResult {
  /// True when the condition held before the deadline.
  bool ok = false;
  /// Empty when ok; otherwise e.g. "timed out after 20 s waiting for: the echo".
  std::string message;
  /// True when ok.
  explicit operator bool() const noexcept { return ok; }
};

/// Thrown by run_until when the condition does not hold in time. what() is the message
/// of the WaitResult.
class WaitTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Runs `reactor` (which must not be running) until `done()` returns true, `deadline`
/// seconds pass, or stop() is called. `done` is checked before the loop blocks and after
/// every batch of callbacks; the loop never sleeps longer than needed. Returns ok, or a
/// message naming `what` and saying whether the deadline passed or the reactor was
/// stopped first. Exceptions from `done` propagate. Throws std::logic_error if the
/// reactor is already running, std::invalid_argument for a negative or NaN deadline.
WaitResult wait_until(Reactor& reactor, const std::function<bool()>& done, std::string_view what,
                      double deadline = default_deadline);

/// Like wait_until, but throws WaitTimeout with the message instead of returning it.
void run_until(Reactor& reactor, const std::function<bool()>& done, std::string_view what,
               double deadline = default_deadline);

}  // namespace torsion::testing
