#pragma once
// error_of(fn): runs code that must throw an EndpointError and returns it, so a test can
// check which parameter and value it names.

#include <doctest/doctest.h>

#include "framework/endpoints.hpp"

namespace torsion::test {

// Runs `fn`, which must throw EndpointError; returns it for checking. Fails the test (and
// returns an empty error) when `fn` returns normally.
template <class F>
EndpointError error_of(F&& fn) {
  try {
    fn();
  } catch (const EndpointError& e) {
    return e;
  }
  FAIL("expected an EndpointError");
  return EndpointError("", "", "");
}

}  // namespace torsion::test
