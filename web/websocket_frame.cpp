#include "web/websocket_frame.hpp"

#include <algorithm>
#include <cstring>

namespace torsion::web {

bool ws_close_code_valid(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

bool Utf8Validator::feed(std::string_view data) noexcept {
  if (failed_) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const auto* end = p + data.size();
  while (p != end) {
    if (need_ == 0) {
      // ASCII runs, eight bytes at a time.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if (word & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      const unsigned char b = *p++;
      if (b < 0x80) continue;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        need_ = 2;
        if (b == 0xE0) lo_ = 0xA0;  // overlong
        if (b == 0xED) hi_ = 0x9F;  // surrogates
      } else if (b >= 0xF0 && b <= 0xF4) {
        need_ = 3;
        if (b == 0xF0) lo_ = 0x90;  // overlong
        if (b == 0xF4) hi_ = 0x8F;  // past U+10FFFF
      } else {
        failed_ = true;
        return false;
      }
    } else {
      const unsigned char b = *p++;
      if (b < lo_ || b > hi_) {
        failed_ = true;
        return false;
      }
      --need_;
      lo_ = 0x80;
      hi_ = 0xBF;
    }
  }
  return true;
}

WsFrameParser::WsFrameParser(WsParserOptions options) : options_(options) {}

void WsFrameParser::fail(std::uint16_t code, const char* why) noexcept {
  if (error_code_ != 0) return;
  error_code_ = code;
  error_message_ = why;
}

std::size_t WsFrameParser::feed(std::string_view data, Sink& sink) {
  std::size_t used = 0;
  while (used < data.size() && !failed() && !closed_) {
    if (!in_payload_) {
      // Gather the header: 2 bytes tell how long the rest of it is.
      std::size_t want = 2;
      if (header_size_ >= 2) {
        const unsigned len7 = header_[1] & 0x7Fu;
        want += (len7 == 126 ? 2u : len7 == 127 ? 8u : 0u) + ((header_[1] & 0x80u) ? 4u : 0u);
      }
      const std::size_t n = std::min(want - header_size_, data.size() - used);
      std::memcpy(header_ + header_size_, data.data() + used, n);
      header_size_ = static_cast<std::uint8_t>(header_size_ + n);
      used += n;
      if (header_size_ == want) take_header(sink);
      continue;
    }
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - used));
    take_payload(data.substr(used, n), sink);
    used += n;
  }
  return used;
}

// Called with the first 2 header bytes (checks the rules they carry; returns false when
// more header is to come) and again with the whole header.
bool WsFrameParser::take_header(Sink& sink) {
  const unsigned b0 = header_[0];
  const unsigned b1 = header_[1];
  const unsigned len7 = b1 & 0x7Fu;
  const std::size_t whole = 2u + (len7 == 126 ? 2u : len7 == 127 ? 8u : 0u) + ((b1 & 0x80u) ? 4u : 0u);
  if (header_size_ == 2) {
    const bool fin = (b0 & 0x80u) != 0;
    const bool rsv1 = (b0 & 0x40u) != 0;
    const unsigned op = b0 & 0x0Fu;
    const bool masked = (b1 & 0x80u) != 0;
    if (b0 & 0x30u) return fail(ws_close::protocol_error, "reserved bit set"), true;
    if (!(op <= 2 || (op >= 8 && op <= 10)))
      return fail(ws_close::protocol_error, "reserved opcode"), true;
    const bool control = op >= 8;
    if (masked != (options_.role == WsRole::server))
      return fail(ws_close::protocol_error,
                  masked ? "masked frame from a server" : "unmasked frame from a client"),
             true;
    if (control) {
      if (!fin) return fail(ws_close::protocol_error, "fragmented control frame"), true;
      if (len7 > 125) return fail(ws_close::protocol_error, "control frame over 125 bytes"), true;
      if (rsv1) return fail(ws_close::protocol_error, "RSV1 on a control frame"), true;
    } else if (op == 0) {
      if (!in_message_) return fail(ws_close::protocol_error, "continuation without a message"), true;
      if (rsv1) return fail(ws_close::protocol_error, "RSV1 on a continuation frame"), true;
    } else {
      if (in_message_) return fail(ws_close::protocol_error, "new message inside a fragmented one"), true;
      if (rsv1 && !options_.allow_rsv1) return fail(ws_close::protocol_error, "RSV1 set without an extension"), true;
    }
    if (whole > 2) return false;
  }
  // The whole header is here.
  fin_ = (b0 & 0x80u) != 0;
  opcode_ = static_cast<WsOpcode>(b0 & 0x0Fu);
  masked_ = (b1 & 0x80u) != 0;
  std::size_t at = 2;
  std::uint64_t length = len7;
  if (len7 == 126) {
    length = (std::uint64_t{header_[2]} << 8) | header_[3];
    at = 4;
  } else if (len7 == 127) {
    length = 0;
    for (std::size_t i = 2; i < 10; ++i) length = (length << 8) | header_[i];
    at = 10;
    if (length >> 63) return fail(ws_close::protocol_error, "64-bit length with its top bit set"), true;
  }
  if (masked_) std::memcpy(mask_, header_ + at, 4);
  mask_offset_ = 0;
  remaining_ = length;
  header_size_ = 0;
  in_payload_ = true;
  control_size_ = 0;
  if (static_cast<unsigned>(opcode_) >= 8) {
    if (remaining_ == 0) finish_control(sink);
    return true;
  }
  const bool compressed = opcode_ == WsOpcode::continuation ? compressed_ : (b0 & 0x40u) != 0;
  const std::uint64_t limit =
      compressed && options_.max_compressed != 0 ? options_.max_compressed : options_.max_message;
  if (length > limit || message_size_ > limit - length)
    return fail(ws_close::message_too_big, "message over the size limit"), true;
  message_size_ += length;
  if (opcode_ != WsOpcode::continuation) {
    in_message_ = true;
    text_ = opcode_ == WsOpcode::text;
    compressed_ = (b0 & 0x40u) != 0;
    utf8_.reset();
    sink.message_begin(opcode_, compressed_);
    if (failed()) return true;
  }
  if (remaining_ == 0) take_payload({}, sink);
  return true;
}

void WsFrameParser::take_payload(std::string_view piece, Sink& sink) {
  const bool control = static_cast<unsigned>(opcode_) >= 8;
  std::string* buffer = control || piece.empty() ? nullptr : sink.message_buffer();
  if (buffer != nullptr) {
    // Straight into the sink's string: one copy, unmasked in place. remaining_ is what
    // this frame still brings (within the limit, checked at its header).
    const std::size_t at = buffer->size();
    const std::size_t needed = at + static_cast<std::size_t>(remaining_);
    if (needed > buffer->capacity())
      buffer->reserve(std::max(needed, std::min(2 * buffer->capacity(),
                                                static_cast<std::size_t>(options_.max_message))));
    buffer->append(piece);
    if (masked_) {
      ws_mask(buffer->data() + at, piece.size(), mask_, mask_offset_);
      mask_offset_ += piece.size();
    }
    piece = std::string_view(*buffer).substr(at);
  } else if (masked_ && !piece.empty()) {
    scratch_.assign(piece);
    ws_mask(scratch_.data(), scratch_.size(), mask_, mask_offset_);
    mask_offset_ += piece.size();
    piece = scratch_;
  }
  remaining_ -= piece.size();
  if (control) {
    std::memcpy(control_ + control_size_, piece.data(), piece.size());
    control_size_ = static_cast<std::uint8_t>(control_size_ + piece.size());
    if (remaining_ == 0) finish_control(sink);
    return;
  }
  if (remaining_ == 0) in_payload_ = false;
  if (text_ && !compressed_ && !utf8_.feed(piece))
    return fail(ws_close::invalid_payload, "text that is not UTF-8");
  if (!piece.empty() && buffer == nullptr) {
    sink.message_data(piece);
    if (failed()) return;
  }
  if (remaining_ == 0 && fin_) {
    if (text_ && !compressed_ && !utf8_.complete())
      return fail(ws_close::invalid_payload, "text that ends inside a UTF-8 character");
    in_message_ = false;
    message_size_ = 0;
    sink.message_end();
  }
}

void WsFrameParser::finish_control(Sink& sink) {
  in_payload_ = false;
  const std::string_view payload(control_, control_size_);
  if (opcode_ != WsOpcode::close) return sink.control_received(opcode_, payload);
  if (payload.size() == 1) return fail(ws_close::protocol_error, "close payload of one byte");
  std::uint16_t code = ws_close::no_status;
  std::string_view reason;
  if (payload.size() >= 2) {
    code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                      static_cast<unsigned char>(payload[1]));
    if (!ws_close_code_valid(code)) return fail(ws_close::protocol_error, "invalid close code");
    reason = payload.substr(2);
    Utf8Validator check;
    if (!check.feed(reason) || !check.complete())
      return fail(ws_close::invalid_payload, "close reason that is not UTF-8");
  }
  closed_ = true;
  sink.close_received(code, reason);
}

std::size_t ws_frame_header(char* out, WsOpcode opcode, bool fin, bool rsv1,
                            std::uint64_t length, const unsigned char* mask) noexcept {
  auto* o = reinterpret_cast<unsigned char*>(out);
  o[0] = static_cast<unsigned char>((fin ? 0x80u : 0u) | (rsv1 ? 0x40u : 0u) |
                                    static_cast<unsigned>(opcode));
  const unsigned char m = mask ? 0x80 : 0;
  std::size_t at;
  if (length <= 125) {
    o[1] = static_cast<unsigned char>(m | length);
    at = 2;
  } else if (length <= 0xFFFF) {
    o[1] = static_cast<unsigned char>(m | 126u);
    o[2] = static_cast<unsigned char>(length >> 8);
    o[3] = static_cast<unsigned char>(length);
    at = 4;
  } else {
    o[1] = static_cast<unsigned char>(m | 127u);
    for (std::size_t i = 0; i < 8; ++i) o[2 + i] = static_cast<unsigned char>(length >> (56 - 8 * i));
    at = 10;
  }
  if (mask) {
    std::memcpy(o + at, mask, 4);
    at += 4;
  }
  return at;
}

void ws_mask(char* data, std::size_t size, const unsigned char* mask, std::size_t offset) noexcept {
  auto* p = reinterpret_cast<unsigned char*>(data);
  std::size_t i = 0;
  // Align to the mask, then XOR eight bytes at a time.
  for (; i < size && ((offset + i) & 3) != 0; ++i) p[i] ^= mask[(offset + i) & 3];
  if (size - i >= 8) {
    unsigned char m8[8];
    for (std::size_t k = 0; k < 8; ++k) m8[k] = mask[k & 3];
    std::uint64_t m;
    std::memcpy(&m, m8, 8);
    for (; size - i >= 8; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      w ^= m;
      std::memcpy(p + i, &w, 8);
    }
  }
  for (; i < size; ++i) p[i] ^= mask[(offset + i) & 3];
}

std::string ws_close_payload(std::uint16_t code, std::string_view reason) {
  if (code == ws_close::no_status) return {};
  if (reason.size() > 123) {
    std::size_t cut = 123;
    // Back up over continuation bytes so that the cut falls on a character boundary.
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0u) == 0x80u) --cut;
    reason = reason.substr(0, cut);
  }
  std::string out;
  out.reserve(2 + reason.size());
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason);
  return out;
}

}  // namespace torsion::web
