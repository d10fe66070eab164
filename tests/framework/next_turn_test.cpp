// next_turn(reactor): a suspension point that is one turn of the loop, not a timer.
#include "framework/task.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

TEST_CASE("next_turn fires from the loop, after what was queued before it") {
  Reactor reactor;
  std::vector<std::string> order;
  reactor.call_soon([&] { order.push_back("queued first"); });
  auto d = next_turn(reactor);
  d.add_callback([&] { order.push_back("next_turn"); });
  CHECK(order.empty());  // never inside the call
  reactor.call_soon([&] { order.push_back("queued after"); });
  wait_for(reactor, [&] { return order.size() == 3; }, "the three calls");
  CHECK(order == std::vector<std::string>{"queued first", "next_turn", "queued after"});
}

TEST_CASE("next_turn at high priority runs before normal calls of the same turn") {
  Reactor reactor;
  std::vector<std::string> order;
  reactor.call_soon([&] { order.push_back("normal"); });
  next_turn(reactor, Priority::high).add_callback([&] { order.push_back("high"); });
  wait_for(reactor, [&] { return order.size() == 2; }, "both calls");
  CHECK(order == std::vector<std::string>{"high", "normal"});
}

TEST_CASE("a cancelled next_turn does nothing when its turn comes") {
  Reactor reactor;
  bool fired = false, errored = false, later = false;
  auto d = next_turn(reactor);
  d.add_callbacks([&] { fired = true; }, [&](const std::exception_ptr&) { errored = true; });
  d.cancel();
  CHECK(errored);
  reactor.call_soon([&] { later = true; });
  wait_for(reactor, [&] { return later; }, "the call after it");
  CHECK_FALSE(fired);
}

TEST_CASE("a coroutine awaits next_turn without a timer") {
  Reactor reactor;
  int turns = 0;
  bool done = false;
  auto t = [](Reactor& r, int& n, bool& flag) -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      co_await next_turn(r);
      ++n;
    }
    flag = true;
  }(reactor, turns, done);
  CHECK(turns == 0);
  wait_for(reactor, [&] { return done; }, "three turns");
  CHECK(turns == 3);
  CHECK(t.done());
}
