#pragma once
// Test helpers: drive a real reactor until a condition holds, failing the test with a
// clear message at a deadline. No sleeps.

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "framework/reactor.hpp"

namespace torsion::test {

// Generous enough for a loaded CI machine under sanitizers; a pass never waits for it.
inline constexpr double kDeadline = 20.0;

// Runs `reactor` until `done()` is true; a test failure names `what` if the deadline hits.
inline bool wait_for(Reactor& reactor, const std::function<bool()>& done, const char* what,
                     double deadline = kDeadline) {
  const bool ok = reactor.run_until(done, deadline);
  if (!ok) FAIL_CHECK("timed out after " << deadline << " s waiting for: " << what);
  return ok;
}

}  // namespace torsion::test
