// Compiled by tests/nodiscard.py, once per CASE: each case drops a result that must be
// kept, and must not compile with -Werror=unused-result ([[nodiscard]], issue 18). CASE 0
// keeps every result and must compile, so that a broken include cannot pass for a refusal.
#include <string>
#include <vector>

#include "framework/cancel.hpp"
#include "framework/deferred.hpp"
#include "framework/maybe_deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/sync.hpp"
#include "framework/task.hpp"
#include "framework/testing/manual_clock.hpp"
#include "transports/endpoints.hpp"
#include "transports/process_helpers.hpp"

namespace {
struct P : torsion::Protocol {};
}  // namespace

void cases(torsion::Reactor& reactor, torsion::testing::ManualClock& clock) {
  P protocol;
  torsion::Semaphore semaphore(1);
#if CASE == 0
  auto a = torsion::succeed(1);
  auto b = torsion::gather(std::vector<torsion::Deferred<int>>{});
  auto c = torsion::maybe_deferred([] { return 1; });
  auto d = protocol.guard([] {});
  auto e = semaphore.acquire();
  auto f = torsion::with_timeout(clock, 1.0, torsion::Deferred<int>());
  auto g = torsion::get_process_output(reactor, {"true"});
  auto h = torsion::server_from_string(reactor, "tcp:0");
  (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h;
#elif CASE == 1
  torsion::succeed(1);
#elif CASE == 2
  torsion::gather(std::vector<torsion::Deferred<int>>{});
#elif CASE == 3
  torsion::maybe_deferred([] { return 1; });
#elif CASE == 4
  protocol.guard([] {});  // the guarded callable, dropped: nothing is bound
#elif CASE == 5
  semaphore.acquire();
#elif CASE == 6
  torsion::with_timeout(clock, 1.0, torsion::Deferred<int>());
#elif CASE == 7
  torsion::get_process_output(reactor, {"true"});
#elif CASE == 8
  torsion::server_from_string(reactor, "tcp:0");
#endif
  (void)reactor, (void)clock, (void)protocol, (void)semaphore;
}
