#include <thread>

#include "docs/snippets/snippets.hpp"
#include "framework/delayed_call.hpp"
#include "framework/looping_call.hpp"
#include "framework/reactor.hpp"
#include "framework/task.hpp"

namespace docs {

std::vector<std::string> timers_in_order(torsion::Reactor& reactor) {
  std::vector<std::string> order;
  // [snippet:call-later]
  torsion::DelayedCall soon = reactor.call_later(0.02, [&] { order.push_back("soon"); });
  torsion::DelayedCall never = reactor.call_later(0.01, [&] { order.push_back("never"); });
  torsion::DelayedCall later = reactor.call_later(0.01, [&] { order.push_back("later"); });

  never.cancel();    // true: it was pending; it will not run
  never.cancel();    // false: a harmless no-op
  later.reset(0.03); // now due 30 ms from now
  soon.delay(-0.01); // 10 ms earlier than planned
  // [end]
  reactor.run_until([&] { return !later.active(); }, 5);
  return order;
}

std::vector<std::string> priorities_in_order(torsion::Reactor& reactor) {
  std::vector<std::string> order;
  // [snippet:priorities]
  reactor.call_idle([&] { order.push_back("idle"); });  // when nothing else is ready
  reactor.call_soon([&] { order.push_back("normal"); });
  reactor.call_soon([&] { order.push_back("high"); }, torsion::Priority::high);
  // runs as: high, normal, idle
  // [end]
  reactor.run_until([&] { return order.size() == 3; }, 5);
  return order;
}

long sum_on_a_worker_thread(torsion::Reactor& reactor) {
  long result = 0;
  // [snippet:call-from-thread]
  std::thread worker([&reactor, &result] {
    long sum = 0;
    for (long i = 1; i <= 1000; ++i) sum += i;  // slow work, off the reactor's thread
    reactor.call_from_thread([&result, sum] { result = sum; });  // back on the reactor
  });
  // [end]
  reactor.run_until([&] { return result != 0; }, 5);
  worker.join();
  return result;
}

int slow_checks_in_a_loop(torsion::Reactor& reactor) {
  int checks = 0;
  bool stopped = false;
  // [snippet:looping-call]
  torsion::LoopingCall health(reactor, [&]() -> torsion::Task<void> {
    co_await torsion::sleep(reactor, 0.03);  // a check slower than the interval
    ++checks;
  });
  health.start(0.01).add_callback([&] { stopped = true; });
  // Calls come at 0, 0.04, 0.08...: each waits for the last check to finish, then for
  // the next 10 ms boundary; the boundaries skipped meanwhile count as missed().
  // [end]
  reactor.run_until([&] { return checks == 3; }, 10);
  const bool skipped = health.missed() >= 6;  // each 30 ms check skips at least 3 boundaries
  health.stop();  // if a fourth check is under way, `stopped` waits for it
  reactor.run_until([&] { return stopped; }, 10);
  return stopped && skipped && !health.waiting() ? 3 : -1;
}

}  // namespace docs
