#include "framework/testing/run_until.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "tests/support/wait.hpp"

using torsion::Reactor;
using torsion::testing::run_until;
using torsion::testing::wait_until;
using torsion::testing::WaitResult;
using torsion::testing::WaitTimeout;

TEST_CASE("wait_until returns as soon as the condition holds") {
  Reactor reactor;
  bool fired = false;
  reactor.call_later(0.001, [&] { fired = true; });
  const double start = reactor.seconds();
  const WaitResult result = wait_until(
      reactor, [&] { return fired; }, "the timer");
  CHECK(result.ok);
  CHECK(static_cast<bool>(result));
  CHECK(result.message.empty());
  CHECK(reactor.seconds() - start < torsion::testing::default_deadline / 2);
  CHECK_FALSE(reactor.running());
}

TEST_CASE("a condition already true does not run the loop") {
  Reactor reactor;
  int ran = 0;
  reactor.call_soon([&] { ++ran; });
  CHECK(wait_until(
            reactor, [] { return true; }, "nothing")
            .ok);
  CHECK(ran == 0);
}

TEST_CASE("the deadline gives a message naming what was awaited") {
  Reactor reactor;
  const WaitResult result = wait_until(
      reactor, [] { return false; }, "the impossible", 0.02);
  CHECK_FALSE(result.ok);
  CHECK(result.message == "timed out after 0.02 s waiting for: the impossible");
}

TEST_CASE("a stopped reactor is told apart from a deadline") {
  Reactor reactor;
  reactor.call_soon([&] { reactor.stop(); });
  const WaitResult result = wait_until(
      reactor, [] { return false; }, "the reply", 10);
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("stopped") != std::string::npos);
  CHECK(result.message.find("the reply") != std::string::npos);
}

TEST_CASE("run_until throws WaitTimeout, a std::runtime_error") {
  Reactor reactor;
  CHECK_THROWS_WITH_AS(run_until(
                           reactor, [] { return false; }, "a miracle", 0.01),
                       "timed out after 0.01 s waiting for: a miracle", WaitTimeout);
  CHECK_THROWS_AS(run_until(
                      reactor, [] { return false; }, "a miracle", 0.01),
                  std::runtime_error);
  int n = 0;
  reactor.call_soon([&] { ++n; });
  CHECK_NOTHROW(run_until(
      reactor, [&] { return n == 1; }, "one callback"));
}

TEST_CASE("bad deadlines and throwing conditions are the caller's errors") {
  Reactor reactor;
  CHECK_THROWS_WITH_AS(wait_until(
                           reactor, [] { return true; }, "x", -1),
                       doctest::Contains("-1"), std::invalid_argument);
  CHECK_THROWS_AS(wait_until(
                      reactor, [] { return true; }, "x", std::nan("")),
                  std::invalid_argument);
  CHECK_THROWS_WITH_AS(wait_until(
                           reactor, []() -> bool { throw std::logic_error("bad"); }, "x"),
                       "bad", std::logic_error);
  CHECK_FALSE(reactor.running());
}

TEST_CASE("the doctest wrapper passes through success") {
  Reactor reactor;
  bool fired = false;
  reactor.call_soon([&] { fired = true; });
  CHECK(torsion::test::wait_for(
      reactor, [&] { return fired; }, "a callback"));
}
