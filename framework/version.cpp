#include "framework/version.hpp"

namespace torsion {

const char* version() noexcept { return TORSION_VERSION_STRING; }

}  // namespace torsion
