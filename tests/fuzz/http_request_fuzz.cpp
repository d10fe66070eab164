// HttpParser (requests): the same events and the same verdict however the input is cut,
// under fuzzer-chosen limits; nothing throws, nothing grows past the limits.

#include "tests/fuzz/fuzz_support.hpp"
#include "tests/web/http_recorder.hpp"

using namespace torsion::web;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  HttpLimits limits;
  limits.max_start_line = 16u + in.take_byte();
  limits.max_field_line = 8u + in.take_byte();
  limits.max_head = 32u + in.take_byte() * 4u;
  limits.max_fields = in.take_byte() % 16u;
  limits.max_body = in.take_byte() * 8u;
  limits.max_chunk_line = 2u + in.take_byte() % 64u;
  const std::uint8_t seed = in.take_byte();
  const bool eof = (seed & 1) != 0;
  const auto whole = test::parse_chunks(HttpParser::Kind::request, {in.data}, limits, eof);
  const auto split =
      test::parse_chunks(HttpParser::Kind::request, torsion::fuzz::cut(in.data, seed), limits, eof);
  FUZZ_CHECK(whole == split);
  for (const auto& e : whole.events) FUZZ_CHECK(e.size() < in.data.size() + 64 * 1024);
  return 0;
}
