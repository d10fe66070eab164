#pragma once
// Private: the pump loop the in-memory testing kits share (Loopback, DatagramNetwork).

#include <cstddef>
#include <stdexcept>
#include <string>

namespace torsion::testing::detail {

// Runs `step` until one moves nothing; returns whether anything moved at all. Throws
// std::runtime_error "WHO: still busy after N steps (WHY)" after `max_steps` busy steps.
template <class Step>
bool pump_steps(Step&& step, std::size_t max_steps, const char* who, const char* why) {
  bool any = false;
  std::size_t busy = 0;
  while (step()) {
    any = true;
    if (++busy >= max_steps)
      throw std::runtime_error(std::string(who) + ": still busy after " + std::to_string(busy) +
                               " steps (" + why + ")");
  }
  return any;
}

}  // namespace torsion::testing::detail
