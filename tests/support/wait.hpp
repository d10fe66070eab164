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

// Runs `reactor` until `done()` is true. If the deadline hits (or the reactor is stopped
// first) the test fails there, as a REQUIRE would, with a message naming `what`: what
// follows a wait relies on it (records[0] after "the connection"), so a failed wait must
// end its test rather than run on into a crash that hides which wait failed. Returns true
// (so REQUIRE(wait_for(...)) reads as before). Call it from the test's own thread, with
// no joinable std::thread on the stack (use std::jthread).
inline bool wait_for(Reactor& reactor, const std::function<bool()>& done, const char* what,
                     double deadline = kDeadline) {
  const testing::WaitResult result = testing::wait_until(reactor, done, what, deadline);
  if (!result) FAIL(result.message);
  return result.ok;
}

}  // namespace torsion::test
