// examples/resp.hpp under examples/kv_server: any input, cut any way, gives the same
// replies and the same close as the input in one read; a connection never holds more
// than a header line of unparsed input; nothing throws or leaks.

#include <string>
#include <vector>

#include "examples/kv_server.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;
using torsion::examples::KvServer;
using torsion::examples::KvStore;
using torsion::examples::resp::Limits;
using torsion::fuzz::Input;

namespace {

std::string run(const std::vector<std::string_view>& chunks, const Limits& limits) {
  testing::ManualClock clock;
  KvStore store(clock);
  testing::StringTransport t;
  KvServer server(store, limits);
  t.connect(server);
  for (auto chunk : chunks) {
    if (!t.connected()) break;
    t.receive(chunk);
    if (t.connected()) FUZZ_CHECK(server.buffered_size() <= limits.max_inline + 1);
  }
  return t.value() + (t.disconnecting() ? "<closed>" : "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::uint8_t seed = in.take_byte();
  Limits limits;
  limits.max_inline = 4 + in.take_byte() % 64;
  limits.max_bulk = in.take_byte() % 64;
  limits.max_args = 1 + in.take_byte() % 8;
  limits.max_request = 40 + std::size_t{in.take_byte()} * 4;
  const std::vector<std::string_view> whole{in.data};
  // The manual clock never moves, so keys set with EX or PX live through both runs.
  FUZZ_CHECK(run(whole, limits) == run(torsion::fuzz::cut(in.data, seed), limits));
  return 0;
}
