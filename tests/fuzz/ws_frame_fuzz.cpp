// WsFrameParser: the same messages, control frames, verdict and (at a close frame)
// stopping point however the input is cut, with or without the sink's buffer; no message exceeds max_message.

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
  for (const auto& event : whole.events) {
    // Data messages are "text:..." / "binary+z:..."; control frames are not limited by it.
    if (event.rfind("text", 0) != 0 && event.rfind("binary", 0) != 0) continue;
    FUZZ_CHECK(event.size() - event.find(':') - 1 <= options.max_message);
  }
  FUZZ_CHECK(whole == torsion::web::test::ws_parse(torsion::fuzz::cut(in.data, seed), options));
  // The same through the sink's own buffer (Sink::message_buffer), whole and cut.
  FUZZ_CHECK(whole == torsion::web::test::ws_parse({in.data}, options, true));
  FUZZ_CHECK(whole == torsion::web::test::ws_parse(torsion::fuzz::cut(in.data, seed), options, true));
  return 0;
}
