// permessage-deflate's inflater (web/detail/ws_deflate.hpp): a compressed message fed
// whole or cut anywhere gives the same verdict, and the same bytes when it inflates;
// the output never passes the limit (no zip bomb gets through); a second message on the
// same context (or after a reset) behaves the same way.

#include "tests/fuzz/fuzz_support.hpp"
#include "web/detail/ws_deflate.hpp"

#include <string>

using namespace torsion::web::detail;

namespace {

struct Outcome {
  WsInflater::Result result = WsInflater::Result::ok;
  std::string out;
};

// Inflates `message` twice in a row on one inflater, in `chunks` each time.
std::vector<Outcome> inflate(const std::vector<std::string_view>& chunks, bool reset, std::uint64_t limit) {
  WsInflater inflater(reset);
  std::vector<Outcome> outcomes;
  for (int round = 0; round < 2; ++round) {
    Outcome o;
    for (auto chunk : chunks) {
      o.result = inflater.feed(chunk, o.out, limit);
      if (o.result != WsInflater::Result::ok) break;
    }
    if (o.result == WsInflater::Result::ok) o.result = inflater.finish(o.out, limit);
    FUZZ_CHECK(o.out.size() <= limit);
    const bool failed = o.result != WsInflater::Result::ok;
    if (failed) o.out.clear();  // how much was made before a failure depends on the cuts
    outcomes.push_back(std::move(o));
    if (failed) break;  // the connection would be closed
  }
  return outcomes;
}

bool same(const std::vector<Outcome>& a, const std::vector<Outcome>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].result != b[i].result || a[i].out != b[i].out) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::uint8_t flags = in.take_byte();
  const std::uint64_t limit = in.take_byte() * 256u;
  const std::uint8_t seed = in.take_byte();
  const bool reset = (flags & 1) != 0;
  const auto whole = inflate({in.data}, reset, limit);
  FUZZ_CHECK(same(whole, inflate(torsion::fuzz::cut(in.data, seed), reset, limit)));
  return 0;
}
