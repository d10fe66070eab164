#include "framework/testing/run_until.hpp"

#include <cmath>
#include <sstream>

namespace torsion::testing {

WaitResult wait_until(Reactor& reactor, const std::function<bool()>& done, std::string_view what,
                      double deadline) {
  if (std::isnan(deadline) || deadline < 0)
    throw std::invalid_argument("wait_until: deadline must be >= 0 seconds, got " +
                                std::to_string(deadline));
  const double start = reactor.seconds();
  if (reactor.run_until(done, deadline)) return {true, {}};
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
