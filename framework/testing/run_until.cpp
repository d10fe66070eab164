#include "framework/testing/run_until.hpp"

#include <cmath>
#include <exception>
#include <sstream>

namespace torsion::testing {

WaitResult wait_until(Reactor& reactor, const std::function<bool()>& done, std::string_view what,
                      double deadline) {
  if (std::isnan(deadline) || deadline < 0)
    throw std::invalid_argument("wait_until: deadline must be >= 0 seconds, got " +
                                std::to_string(deadline));
  const double start = reactor.seconds();
  // Reactor::run_until is not exception-safe (it would stay "running"), so an exception
  // from `done` ends the loop normally and is rethrown here.
  std::exception_ptr failure;
  const bool ok = reactor.run_until(
      [&] {
        try {
          return done();
        } catch (...) {
          failure = std::current_exception();
          return true;
        }
      },
      deadline);
  if (failure) std::rethrow_exception(failure);
  if (ok) return {true, {}};
  const double waited = reactor.seconds() - start;
  std::ostringstream message;
  if (waited < deadline)  // run_until returned early: somebody called stop()
    message << "the reactor was stopped after " << waited << " s, before: " << what;
  else
    message << "timed out after " << deadline << " s waiting for: " << what;
  return {false, message.str()};
}

void run_until(Reactor& reactor, const std::function<bool()>& done, std::string_view what,
               double deadline) {
  WaitResult result = wait_until(reactor, done, what, deadline);
  if (!result) throw WaitTimeout(result.message);
}

}  // namespace torsion::testing
