// Twisted's in-place chaining: d.add_callback(f); d.add_callback(g); runs f, then g with
// f's result, while the type stays the same; a step that changes it ends in-place
// chaining on that handle with a clear error (framework/deferred.hpp).
#include <doctest/doctest.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/task.hpp"

using namespace torsion;

TEST_CASE("chaining: several add_callback on one Deferred run in order, each on the last result") {
  Deferred<int> d;
  std::vector<std::string> seen;
  d.add_callback([&](int v) {
    seen.push_back("f " + std::to_string(v));
    return v + 1;
  });
  d.add_callback([&](int v) {
    seen.push_back("g " + std::to_string(v));
    return v * 10;
  });
  int last = 0;
  auto end = d.add_callback([&](int v) { last = v; });
  d.callback(1);
  CHECK(seen == std::vector<std::string>{"f 1", "g 2"});
  CHECK(last == 20);
}

TEST_CASE("chaining: an error skips the callbacks to the next errback, which may recover") {
  Deferred<int> d;
  std::vector<std::string> seen;
  d.add_callback([&](int) -> int { throw std::runtime_error("bad"); });
  d.add_callback([&](int v) {
    seen.push_back("skipped");
    return v;
  });
  d.add_errback([&](std::exception_ptr) {
    seen.push_back("errback");
    return 7;
  });
  d.add_both([&](Outcome<int> o) {
    seen.push_back("both " + std::to_string(o.value()));
    return o;
  });
  d.callback(1);
  CHECK(seen == std::vector<std::string>{"errback", "both 7"});
}

TEST_CASE("chaining: steps added after the Deferred fired run at once, in order") {
  Deferred<void> d;
  d.callback();
  std::vector<int> order;
  d.add_callback([&] { order.push_back(1); });
  d.add_callback([&] { order.push_back(2); });
  d.add_callback([&] { order.push_back(3); });
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("chaining: a step returning a Deferred pauses the chain until it fires") {
  Deferred<int> d, inner;
  std::vector<int> seen;
  d.add_callback([&](int) { return inner; });
  d.add_callback([&](int v) {
    seen.push_back(v);
    return v;
  });
  d.callback(1);
  CHECK(seen.empty());
  inner.callback(5);
  CHECK(seen == std::vector<int>{5});
}

TEST_CASE("chaining: a copy of the handle sees the same chain; a type change ends it there") {
  Deferred<int> d;
  Deferred<int> copy = d;
  int got = 0;
  d.add_callback([](int v) { return v + 1; });
  Deferred<std::string> text = copy.add_callback([](int v) { return std::to_string(v); });
  CHECK_THROWS_WITH_AS(d.add_callback([](int v) { return v; }), doctest::Contains("another type"),
                       std::logic_error);
  text.add_callback([&](std::string s) { got = std::stoi(s); });
  d.callback(1);
  CHECK(got == 2);  // the first step ran, then the conversion, then the last
}

TEST_CASE("chaining: co_await after add_callback waits for the end of the chain") {
  Deferred<int> d;
  d.add_callback([](int v) { return v * 2; });
  int got = 0;
  auto task = [](Deferred<int> in, int& out) -> Task<void> { out = co_await in; }(d, got);
  d.callback(21);
  CHECK(got == 42);
}

// A Deferred has one consumer. A co_await that comes after another consumer took the
// result (a step that changed the type, another co_await, gather) gets a clear
// std::logic_error, thrown at the co_await in the awaiting coroutine, which may catch it
// and go on; its frame is never destroyed under it (a refused attach used to destroy it).
TEST_CASE("chaining: co_await after a type change throws at the co_await, catchable") {
  Deferred<int> d;
  Deferred<std::string> text = d.add_callback([](int v) { return std::to_string(v); });
  Deferred<int> later;
  std::string refused;
  int after = 0;
  auto task = [](Deferred<int> in, Deferred<int> next, std::string& why,
                 int& out) -> Task<void> {
    const std::string local = "the frame is alive";
    try {
      co_await in;
    } catch (const std::logic_error& e) {
      why = std::string(e.what()) + " / " + local;
    }
    out = co_await next;  // the coroutine goes on after the refusal
  }(d, later, refused, after);
  CHECK(refused.find("another type") != std::string::npos);
  CHECK(refused.find("the frame is alive") != std::string::npos);
  REQUIRE_FALSE(task.done());
  later.callback(5);
  REQUIRE(task.done());
  CHECK(after == 5);
  std::string got;
  text.add_callback([&](std::string s) { got = std::move(s); });
  d.callback(7);
  CHECK(got == "7");  // the consumer that took the result still has it
}

TEST_CASE("chaining: a second co_await on one Deferred is refused; the first still gets the value") {
  Deferred<int> d;
  int first = 0;
  auto a = [](Deferred<int> in, int& out) -> Task<void> { out = co_await in; }(d, first);
  auto b = [](Deferred<int> in) -> Task<int> { co_return co_await in; }(d);
  REQUIRE(b.done());  // refused at once, without suspending
  std::string why;
  b.deferred().add_errback([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::logic_error& x) {
      why = x.what();
    }
    return 0;
  });
  CHECK(why.find("already has a consumer") != std::string::npos);
  d.callback(3);
  REQUIRE(a.done());
  CHECK(first == 3);
}

TEST_CASE("chaining: co_await on a fired Deferred that another co_await consumed is refused") {
  Deferred<int> d;
  d.callback(4);
  int first = 0;
  auto a = [](Deferred<int> in, int& out) -> Task<void> { out = co_await in; }(d, first);
  REQUIRE(a.done());
  CHECK(first == 4);
  bool refused = false;
  auto b = [](Deferred<int> in, bool& r) -> Task<void> {
    try {
      co_await in;
    } catch (const std::logic_error&) {
      r = true;
    }
  }(d, refused);
  REQUIRE(b.done());
  CHECK(refused);
}

TEST_CASE("chaining: cancelling a coroutine after a refused co_await does not cancel the Deferred it was refused") {
  Deferred<int> d;
  int first = 0;
  auto a = [](Deferred<int> in, int& out) -> Task<void> { out = co_await in; }(d, first);
  Deferred<void> gate;
  auto b = [](Deferred<int> in, Deferred<void> g) -> Task<void> {
    try {
      co_await in;
    } catch (const std::logic_error&) {
    }
    co_await g;
  }(d, gate);
  REQUIRE_FALSE(b.done());
  b.cancel();  // reaches `gate`, the Deferred b awaits, never `d`
  CHECK(gate.called());
  CHECK_FALSE(d.called());
  d.callback(9);
  CHECK(first == 9);
}
