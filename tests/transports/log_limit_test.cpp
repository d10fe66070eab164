#include "transports/detail/log_limit.hpp"

#include <doctest/doctest.h>

using torsion::detail::LogLimiter;

TEST_CASE("log_limit: one line per interval, the next says how many were left out") {
  LogLimiter limit(1.0);
  REQUIRE(limit.admit(100.0) == std::string());  // the first is logged, with nothing to add
  for (int i = 1; i <= 9; ++i) CHECK_FALSE(limit.admit(100.0 + 0.1 * i).has_value());
  const auto next = limit.admit(101.5);
  REQUIRE(next.has_value());
  CHECK(*next == " (9 more like it in the last 1.5 s)");
  CHECK_FALSE(limit.admit(102.0).has_value());  // a new interval began at 101.5
  CHECK(limit.admit(102.5) == " (1 more like it in the last 1.0 s)");
  CHECK(limit.admit(200.0) == std::string());  // a quiet spell: nothing left out
}

TEST_CASE("log_limit: a zero interval logs everything") {
  LogLimiter limit(0);
  for (int i = 0; i < 5; ++i) CHECK(limit.admit(1.0) == std::string());
}
