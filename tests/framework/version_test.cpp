#include "framework/version.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("the version macros, the string and the library agree") {
  const std::string expected = std::to_string(TORSION_VERSION_MAJOR) + "." +
                               std::to_string(TORSION_VERSION_MINOR) + "." +
                               std::to_string(TORSION_VERSION_PATCH);
  CHECK(expected == TORSION_VERSION_STRING);
  CHECK(std::string(torsion::version()) == TORSION_VERSION_STRING);
  CHECK(TORSION_VERSION ==
        TORSION_VERSION_MAJOR * 10000 + TORSION_VERSION_MINOR * 100 + TORSION_VERSION_PATCH);
  static_assert(TORSION_VERSION_MINOR < 100 && TORSION_VERSION_PATCH < 100,
                "TORSION_VERSION packs minor and patch in two digits each");
}
