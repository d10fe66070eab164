#pragma once
// Test helpers: drive a real reactor until a condition holds, failing the test with a
// clear message at a deadline. No sleeps. A thin doctest wrapper over the public
// framework/testing/run_until.hpp.

#include <doctest/doctest.h>

#include <functional>

#include "framework/reactor.hpp"
#include "framework/testing/run_until.hpp"

namespace torsion::test {

// Generous enough for a loaded CI machine under sanitizers; a pass never waits for it.
inline constexpr double kDeadline = testing::default_deadline;

// Runs `reactor` until `done()` is true; a test failure names `what` if the deadline hits
// (or the reactor is stopped first). Returns whether `done()` held.
inline bool wait_for(Reactor& reactor, const std::function<bool()>& done, const char* what,
                     double deadline = kDeadline) {
  const testing::WaitResult result = testing::wait_until(reactor, done, what, deadline);
  if (!result) FAIL_CHECK(result.message);
  return result.ok;
}

}  // namespace torsion::test
