// Int8/16/32StringReceiver: same strings and verdict however the input is cut, strings
// within the limit, nothing throws.

#include <string>
#include <vector>

#include "framework/testing/string_transport.hpp"
#include "protocols/prefixed_string_receiver.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;

namespace {

template <std::size_t N>
class Probe : public PrefixedStringReceiver<N> {
 public:
  using PrefixedStringReceiver<N>::PrefixedStringReceiver;
  std::vector<std::string> strings;
  void string_received(std::string_view s) override {
    FUZZ_CHECK(s.size() <= this->max_length());
    strings.emplace_back(s);
    if (s == "P") this->pause_producing();
  }
};

template <std::size_t N>
std::vector<std::string> run(const std::vector<std::string_view>& chunks, std::size_t max) {
  testing::StringTransport t;
  Probe<N> p(max);
  t.connect(p);
  for (auto chunk : chunks) {
    if (!t.connected()) break;
    while (p.paused() && t.connected()) p.resume_producing();  // resumed before the next read
    p.data_received(chunk);
  }
  while (p.paused() && t.connected()) p.resume_producing();  // each resume may pause again
  FUZZ_CHECK(p.rejection().has_value() == t.disconnecting());
  if (p.rejection()) p.strings.push_back("rejected");
  return p.strings;
}

template <std::size_t N>
void check(std::string_view data, std::size_t max, std::uint8_t seed) {
  FUZZ_CHECK(run<N>({data}, max) == run<N>(torsion::fuzz::cut(data, seed), max));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::size_t max = in.take_byte() * 2u;
  const std::uint8_t seed = in.take_byte();
  check<1>(in.data, max, seed);
  check<2>(in.data, max, seed);
  check<4>(in.data, max, seed);
  return 0;
}
