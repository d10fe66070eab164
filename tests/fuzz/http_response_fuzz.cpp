// HttpParser (responses): the same events and verdict however the input is cut, with or
// without a HEAD request before it and an end of stream after it.

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
  const std::uint8_t flags = in.take_byte();
  const std::uint8_t seed = in.take_byte();
  const bool eof = (flags & 1) != 0;
  const bool head = (flags & 2) != 0;
  const auto whole = test::parse_chunks(HttpParser::Kind::response, {in.data}, limits, eof, head);
  const auto split = test::parse_chunks(HttpParser::Kind::response,
                                        torsion::fuzz::cut(in.data, seed), limits, eof, head);
  FUZZ_CHECK(whole == split);
  return 0;
}
