#include <thread>

#include "docs/snippets/snippets.hpp"
#include "framework/delayed_call.hpp"
#include "framework/reactor.hpp"

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

}  // namespace docs
