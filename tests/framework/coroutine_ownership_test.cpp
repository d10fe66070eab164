// Coroutine functions own their callable for the coroutine's whole life (issue 18),
// also where the callable is called once and dropped: call_later, call_soon and
// maybe_deferred run a coroutine lambda in a frame that owns a copy of it. Each test
// watches a captured shared_ptr: the frame's copy keeps its count up while the coroutine
// waits, and a captured std::string is read after the wait (ASan: heap-use-after-free
// when the lambda is not owned).
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "framework/deferred.hpp"
#include "framework/maybe_deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;
using torsion::testing::ManualClock;

namespace {

// A long string (not in the small-string buffer), so reading it after it is freed is a
// heap-use-after-free.
std::string long_text() { return std::string(64, 'x'); }

}  // namespace

TEST_CASE("call_later owns a coroutine lambda's captures across co_await") {
  ManualClock clock;
  Deferred<int> gate;
  auto token = std::make_shared<int>(7);
  std::string seen;
  (void)clock.call_later(1, [token, text = long_text(), &gate, &seen]() -> Task<void> {
    const int n = co_await gate;
    seen = text.substr(0, 2) + std::to_string(n + *token);
  });
  CHECK(token.use_count() == 2);  // the timer's copy
  clock.advance(1);               // runs up to co_await; the timer drops its copy
  CHECK(token.use_count() == 2);  // the coroutine frame's copy
  gate.callback(1);
  CHECK(seen == "xx8");
  CHECK(token.use_count() == 1);  // the coroutine has ended and released it
}

TEST_CASE("call_soon owns a coroutine lambda's captures across co_await") {
  Reactor reactor;
  Deferred<void> gate;
  auto token = std::make_shared<int>(1);
  bool started = false;
  std::string seen;
  reactor.call_soon([token, text = long_text(), &gate, &started, &seen]() -> Task<void> {
    started = true;
    co_await gate;
    seen = text.substr(0, 3);
  });
  REQUIRE(wait_for(reactor, [&] { return started; }, "the coroutine to start"));
  CHECK(token.use_count() == 2);
  gate.callback();
  CHECK(seen == "xxx");
  CHECK(token.use_count() == 1);
}

TEST_CASE("maybe_deferred owns a temporary coroutine lambda and its arguments") {
  Deferred<int> gate;
  auto token = std::make_shared<int>(2);
  auto d = maybe_deferred(
      [token, text = long_text(), &gate](std::string suffix) -> Task<std::string> {
        const int n = co_await gate;
        co_return text.substr(0, 1) + suffix + std::to_string(n * *token);
      },
      std::string(32, 'y'));
  CHECK(token.use_count() == 2);  // the lambda temporary is gone; the frame holds a copy
  gate.callback(21);
  std::string got;
  d.add_callback([&](std::string s) { got = std::move(s); });
  CHECK(got == "x" + std::string(32, 'y') + "42");
  CHECK(token.use_count() == 1);
}
