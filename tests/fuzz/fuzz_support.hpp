#pragma once
// Shared by the libFuzzer targets: cuts an input into reads the way a fuzzer-chosen
// pattern says, and checks properties with a hard stop (so the fuzzer records a crash).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace torsion::fuzz {

// Aborts with a message when a property does not hold.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

// Reads configuration bytes off the front of the input.
struct Input {
  std::string_view data;
  std::uint8_t take_byte() {
    if (data.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(data[0]);
    data.remove_prefix(1);
    return b;
  }
};

// Cuts `data` into chunks whose sizes follow a small generator seeded by `seed`:
// sizes 1..max_chunk, so every split pattern is reachable.
inline std::vector<std::string_view> cut(std::string_view data, std::uint8_t seed,
                                         std::size_t max_chunk = 16) {
  std::vector<std::string_view> chunks;
  std::uint32_t state = seed * 2654435761u + 1;
  while (!data.empty()) {
    state = state * 1103515245u + 12345u;
    const std::size_t n = 1 + (state >> 16) % max_chunk;
    chunks.push_back(data.substr(0, n));
    data.remove_prefix(std::min(n, data.size()));
  }
  return chunks;
}

}  // namespace torsion::fuzz
