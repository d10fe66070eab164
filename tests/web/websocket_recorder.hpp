#pragma once
// Records what a WsFrameParser reports, in a form that does not depend on how the input
// was cut: whole messages, control frames and the verdict. Shared by the frame tests and
// the ws_frame fuzz target.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "web/websocket_frame.hpp"

namespace torsion::web::test {

struct WsParse {
  std::vector<std::string> events;  // "text:hello", "binary:..", "ping:..", "close:1000:bye"
  std::uint16_t error = 0;          // the parser's close code on failure
  bool closed = false;
  std::size_t used = 0;             // bytes used, when it stopped at a close frame
  bool operator==(const WsParse&) const = default;
};

class WsRecorder final : public WsFrameParser::Sink {
 public:
  void message_begin(WsOpcode opcode, bool compressed) override {
    current_ = std::string(opcode == WsOpcode::text ? "text" : "binary") + (compressed ? "+z:" : ":");
  }
  void message_data(std::string_view data) override { current_.append(data); }
  // With `buffered`, payloads go through message_buffer() instead (the parser appends).
  std::string* message_buffer() override { return buffered ? &current_ : nullptr; }
  bool buffered = false;
  void message_end() override { out.events.push_back(std::move(current_)); }
  void control_received(WsOpcode opcode, std::string_view payload) override {
    out.events.push_back((opcode == WsOpcode::ping ? "ping:" : "pong:") + std::string(payload));
  }
  void close_received(std::uint16_t code, std::string_view reason) override {
    out.events.push_back("close:" + std::to_string(code) + ":" + std::string(reason));
  }
  WsParse out;

 private:
  std::string current_;
};

// Parses `chunks` in order with a fresh parser (`buffered`: through message_buffer()).
inline WsParse ws_parse(const std::vector<std::string_view>& chunks, const WsParserOptions& options,
                        bool buffered = false) {
  WsFrameParser parser(options);
  WsRecorder recorder;
  recorder.buffered = buffered;
  std::size_t used = 0;
  for (std::string_view chunk : chunks) {
    const std::size_t n = parser.feed(chunk, recorder);
    used += n;
    if (n < chunk.size()) break;
  }
  recorder.out.error = parser.error_code();
  recorder.out.closed = parser.closed();
  recorder.out.used = parser.closed() ? used : 0;
  return recorder.out;
}

// A frame as a peer on the other side of `role` would send it: masked towards a server.
inline std::string ws_frame(WsOpcode opcode, std::string_view payload, bool fin = true,
                            bool to_server = true, bool rsv1 = false) {
  static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  char head[ws_max_header];
  const std::size_t n = ws_frame_header(head, opcode, fin, rsv1, payload.size(), to_server ? key : nullptr);
  std::string out(head, n);
  std::string body(payload);
  if (to_server) ws_mask(body.data(), body.size(), key);
  return out + body;
}

}  // namespace torsion::web::test
