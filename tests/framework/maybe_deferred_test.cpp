#include "framework/maybe_deferred.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

using namespace torsion;

namespace {

template <class T>
Outcome<T> outcome_of(Deferred<T> d) {
  std::optional<Outcome<T>> got;
  d.add_both([&](Outcome<T> o) { got.emplace(std::move(o)); });
  REQUIRE(got.has_value());  // every case below has fired by the time it returns
  return std::move(*got);
}

Task<int> doubled(int x) { co_return 2 * x; }

}  // namespace

TEST_CASE("maybe_deferred turns a value, void, a throw, a Deferred or a Task into a Deferred") {
  CHECK(outcome_of(maybe_deferred([] { return 42; })).value() == 42);
  CHECK(outcome_of(maybe_deferred([](const std::string& s) { return s + "!"; }, "hi")).value() ==
        "hi!");

  int calls = 0;
  Deferred<void> v = maybe_deferred([&] { ++calls; });
  CHECK(calls == 1);
  CHECK(outcome_of(v).ok());

  auto thrown = outcome_of(maybe_deferred([]() -> int { throw std::runtime_error("boom"); }));
  CHECK(error_is<std::runtime_error>(thrown.error()));
  CHECK(describe_error(thrown.error()).find("boom") != std::string::npos);

  CHECK(outcome_of(maybe_deferred([] { return succeed(std::string("ready")); })).value() == "ready");
  CHECK(outcome_of(maybe_deferred(doubled, 21)).value() == 42);

  // A Deferred that fires later is waited for, not copied as a value.
  Deferred<int> later;
  Deferred<int> wrapped = maybe_deferred([&] { return later; });
  std::optional<int> got;
  wrapped.add_callback([&](int x) { got = x; });
  CHECK_FALSE(got);
  later.callback(7);
  CHECK(got == 7);
}
