// NetstringReceiver: same strings and same verdict however the input is cut; every
// string within the limit; nothing throws.

#include <optional>
#include <string>
#include <vector>

#include "framework/testing/string_transport.hpp"
#include "protocols/netstring_receiver.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;

namespace {

class Probe : public NetstringReceiver {
 public:
  using NetstringReceiver::NetstringReceiver;
  std::vector<std::string> strings;
  void string_received(std::string_view s) override {
    FUZZ_CHECK(s.size() <= max_length());
    strings.emplace_back(s);
  }
};

struct Outcome {
  std::vector<std::string> strings;
  std::optional<error> rejected;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const std::vector<std::string_view>& chunks, std::size_t max) {
  testing::StringTransport t;
  Probe p(max);
  t.connect(p);
  for (auto chunk : chunks) {
    if (!t.connected()) break;
    p.data_received(chunk);
  }
  FUZZ_CHECK(p.rejection().has_value() == t.disconnecting());
  return {p.strings, p.rejection() ? std::optional<error>(p.rejection()->kind()) : std::nullopt};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::size_t max = in.take_byte() * 4u;
  const std::uint8_t seed = in.take_byte();
  FUZZ_CHECK(run({in.data}, max) == run(torsion::fuzz::cut(in.data, seed), max));
  return 0;
}
