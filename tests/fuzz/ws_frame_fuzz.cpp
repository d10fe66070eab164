// WsFrameParser: the same messages, control frames, verdict and (at a close frame)
// stopping point however the input is cut; no message exceeds max_message.

#include "tests/fuzz/fuzz_support.hpp"
#include "tests/web/websocket_recorder.hpp"

using namespace torsion::web;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::uint8_t flags = in.take_byte();
  WsParserOptions options;
  options.role = (flags & 1) ? WsRole::client : WsRole::server;
  options.allow_rsv1 = (flags & 2) != 0;
  options.max_message = in.take_byte() * 16u;
  const std::uint8_t seed = in.take_byte();
  const auto whole = torsion::web::test::ws_parse({in.data}, options);
  for (const auto& event : whole.events)
    FUZZ_CHECK(event.size() <= options.max_message + 9);
  FUZZ_CHECK(whole == torsion::web::test::ws_parse(torsion::fuzz::cut(in.data, seed), options));
  return 0;
}
