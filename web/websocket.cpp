#include "web/websocket.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <utility>

#include "web/detail/ws_deflate.hpp"
#include "web/detail/ws_setup.hpp"

namespace torsion::web {

namespace {

std::string describe(const WsCloseStatus& status) {
  std::string out = "WebSocket closed: " + std::to_string(status.code);
  if (!status.reason.empty()) out += " " + status.reason;
  return out;
}

bool sendable_close_code(std::uint16_t code) noexcept {
  return ws_close_code_valid(code);
}

}  // namespace

WebSocketClosedError::WebSocketClosedError(WsCloseStatus status)
    : std::runtime_error(describe(status)), status_(std::move(status)) {}

void detail::WsSetup::start(WebSocketProtocol& protocol, Scheduler& scheduler, WsRole role,
                            std::string subprotocol, const WsDeflateAgreement* deflate,
                            const WsDeflateOptions* deflate_options) {
  protocol.scheduler_ = &scheduler;
  protocol.role_ = role;
  protocol.subprotocol_ = std::move(subprotocol);
  WsParserOptions parser;
  parser.role = role;
  parser.max_message = protocol.options_.max_message;
  protocol.deflate_.reset();
  if (deflate != nullptr) {
    protocol.deflate_ = std::make_unique<WsDeflateSession>();
    protocol.deflate_->agreed = *deflate;
    if (deflate_options != nullptr) protocol.deflate_->options = *deflate_options;
    parser.allow_rsv1 = true;
    // A compressed message is limited after inflation (message_data); on the wire it
    // may be a little larger than its inflated size (deflate's stored blocks), no more.
    const std::uint64_t m = protocol.options_.max_message;
    parser.max_compressed = m + std::min<std::uint64_t>(m / 16 + 1024, UINT64_MAX - m);
  }
  protocol.parser_ = WsFrameParser(parser);
  if (role == WsRole::client) {
    std::random_device device;
    protocol.mask_state_ = device() | 1u;
  }
}

WebSocketProtocol::WebSocketProtocol(WebSocketOptions options) : options_(options) {}

WebSocketProtocol::~WebSocketProtocol() { cancel_timers(); }

void WebSocketProtocol::cancel_timers() {
  close_timer_.cancel();
  ping_timer_.cancel();
  pong_deadline_.cancel();
}

void WebSocketProtocol::connection_made() {
  if (scheduler_ == nullptr)
    throw std::logic_error("WebSocketProtocol: not set up by an upgrade or a client connect");
  state_ = State::open;
  if (options_.ping_interval > 0)
    ping_timer_ = scheduler_->call_later(options_.ping_interval, [this] { keepalive_tick(); });
  connection_opened();
}

void WebSocketProtocol::keepalive_tick() {
  if (state_ != State::open) return;
  ping_timer_ = scheduler_->call_later(options_.ping_interval, [this] { keepalive_tick(); });
  if (pong_deadline_.active()) return;  // still waiting for the last one
  send_frame(WsOpcode::ping, "keepalive");
  if (options_.ping_timeout > 0)
    pong_deadline_ = scheduler_->call_later(options_.ping_timeout, [this] {
      if (!has_transport() || state_ == State::closed) return;
      status_.code = ws_close::internal_error;
      status_.reason = "keepalive ping timeout";
      fail(ws_close::internal_error, "keepalive ping timeout");
      transport().abort_connection();
    });
}

void WebSocketProtocol::data_received(std::string_view data) {
  if (state_ == State::closed || state_ == State::idle) return;
  parser_.feed(data, *this);
  if (parser_.failed() && state_ != State::closed)
    fail(parser_.error_code(), parser_.error_message());
}

bool WebSocketProtocol::eof_received() {
  state_ = State::closed;  // no close frame: connection_lost reports 1006
  return false;
}

void WebSocketProtocol::connection_lost(const Reason& reason) {
  cancel_timers();
  state_ = State::closed;
  status_.transport_reason = reason;
  if (!status_.clean && status_.code == ws_close::abnormal && status_.reason.empty())
    status_.reason = reason.message();
  while (!waiters_.empty()) {
    auto waiter = std::move(waiters_.front());
    waiters_.pop_front();
    waiter.errback(WebSocketClosedError(status_));
  }
  connection_closed(status_);
}

void WebSocketProtocol::message_begin(WsOpcode opcode, bool compressed) {
  current_.type = opcode == WsOpcode::text ? Message::Type::text : Message::Type::binary;
  current_.data.clear();
  inflating_ = compressed;  // the parser allows RSV1 only when deflate_ is set
  if (!compressed) return;
  inflated_utf8_.reset();
  inflated_checked_ = 0;
  if (!deflate_->inflater)
    deflate_->inflater = std::make_unique<detail::WsInflater>(deflate_->agreed.decompress_reset);
}

// An uncompressed message's payload goes straight into the message (one copy).
std::string* WebSocketProtocol::message_buffer() { return inflating_ ? nullptr : &current_.data; }

void WebSocketProtocol::message_data(std::string_view data) {
  if (!inflating_) {
    current_.data.append(data);
    return;
  }
  inflate(static_cast<int>(deflate_->inflater->feed(data, current_.data, options_.max_message)));
}

// Checks what the inflater made (the size limit, the stream, the text), failing the
// parser with the close code.
void WebSocketProtocol::inflate(int result) {
  using Result = detail::WsInflater::Result;
  const std::size_t checked = inflated_checked_;
  inflated_checked_ = current_.data.size();
  if (static_cast<Result>(result) == Result::too_big)
    return parser_.fail(ws_close::message_too_big, "message over the size limit once inflated");
  if (static_cast<Result>(result) == Result::corrupt)
    return parser_.fail(ws_close::invalid_payload, "compressed data that does not inflate");
  if (current_.text() && !inflated_utf8_.feed(std::string_view(current_.data).substr(checked)))
    parser_.fail(ws_close::invalid_payload, "text that is not UTF-8");
}

void WebSocketProtocol::message_end() {
  if (inflating_) {
    inflate(static_cast<int>(deflate_->inflater->finish(current_.data, options_.max_message)));
    inflated_checked_ = 0;
    if (parser_.failed()) return;
    if (current_.text() && !inflated_utf8_.complete())
      return parser_.fail(ws_close::invalid_payload, "text that ends inside a UTF-8 character");
  }
  if (state_ == State::closed) return;
  message_received(std::exchange(current_, Message{}));
}

void WebSocketProtocol::message_received(Message message) {
  if (!waiters_.empty()) {
    auto waiter = std::move(waiters_.front());
    waiters_.pop_front();
    waiter.callback(std::move(message));
    return;
  }
  queue_.push_back(std::move(message));
  if (queue_.size() >= options_.max_queue && !reading_paused_ && has_transport()) {
    reading_paused_ = true;
    transport().pause_producing();
  }
}

Deferred<Message> WebSocketProtocol::receive() {
  if (!queue_.empty()) {
    Message message = std::move(queue_.front());
    queue_.pop_front();
    if (reading_paused_ && queue_.size() < options_.max_queue && has_transport()) {
      reading_paused_ = false;
      transport().resume_producing();
    }
    return torsion::succeed(std::move(message));
  }
  if (state_ == State::closed || !has_transport())
    return torsion::fail<Message>(std::make_exception_ptr(WebSocketClosedError(status_)));
  waiters_.emplace_back();
  return waiters_.back();
}

void WebSocketProtocol::control_received(WsOpcode opcode, std::string_view payload) {
  if (opcode == WsOpcode::ping) {
    if (state_ == State::open) send_frame(WsOpcode::pong, payload);
    return;
  }
  pong_deadline_.cancel();
  pong_received(payload);
}

void WebSocketProtocol::close_received(std::uint16_t code, std::string_view reason) {
  status_.code = code;
  status_.reason = std::string(reason);
  status_.clean = true;
  if (state_ == State::open) {
    // Echo the peer's code (RFC 6455 5.5.1); a close without a code gets one without.
    const std::string payload = ws_close_payload(code, {});
    send_frame(WsOpcode::close, payload);
  }
  state_ = State::closed;
  close_timer_.cancel();
  transport().lose_connection();
}

void WebSocketProtocol::fail(std::uint16_t code, std::string_view why) {
  if (state_ == State::open) {
    const std::string payload = ws_close_payload(code, why);
    send_frame(WsOpcode::close, payload);
  }
  status_.code = code;
  status_.reason = std::string(why);
  status_.clean = false;
  state_ = State::closed;
  transport().lose_connection();
}

namespace {

void check_utf8(std::string_view text, const char* who) {
  Utf8Validator check;
  if (!check.feed(text) || !check.complete())
    throw std::invalid_argument(std::string("WebSocketProtocol::") + who + ": the text is not UTF-8");
}

}  // namespace

void WebSocketProtocol::send_text(std::string_view text) {
  check_utf8(text, "send_text");
  if (state_ == State::open) send_message(WsOpcode::text, text);
}

void WebSocketProtocol::send(Message message) {
  if (message.text()) check_utf8(message.data, "send");
  if (state_ != State::open) return;
  const WsOpcode opcode = message.text() ? WsOpcode::text : WsOpcode::binary;
  // Compressed messages are new bytes anyway; small ones are cheaper copied.
  if ((deflate_ && deflate_->agreed.compress_bits != 0) || message.data.size() <= 1024)
    return send_message(opcode, message.data);
  send_owned_frame(opcode, std::move(message.data));
}

void WebSocketProtocol::send_binary(std::string_view data) {
  if (state_ == State::open) send_message(WsOpcode::binary, data);
}

void WebSocketProtocol::ping(std::string_view payload) {
  if (payload.size() > 125)
    throw std::invalid_argument("WebSocketProtocol::ping: payload of " +
                                std::to_string(payload.size()) + " bytes, over 125");
  if (state_ == State::open) send_frame(WsOpcode::ping, payload);
}

void WebSocketProtocol::close(std::uint16_t code, std::string_view reason) {
  if (!sendable_close_code(code))
    throw std::invalid_argument("WebSocketProtocol::close: " + std::to_string(code) +
                                " is not a close code that may be sent");
  if (state_ != State::open) return;
  const std::string payload = ws_close_payload(code, reason);
  send_frame(WsOpcode::close, payload);
  state_ = State::closing;
  status_.code = code;
  status_.reason = std::string(reason);
  if (options_.close_timeout > 0)
    close_timer_ = scheduler_->call_later(options_.close_timeout, [this] {
      if (has_transport()) transport().abort_connection();
    });
}

// A data message, compressed when permessage-deflate was agreed (and this side may
// compress: not held to a window of 8, and within zlib's counts).
void WebSocketProtocol::send_message(WsOpcode opcode, std::string_view payload) {
  if (!deflate_ || deflate_->agreed.compress_bits == 0 || payload.size() >= (1u << 30) ||
      !has_transport())
    return send_frame(opcode, payload);
  detail::WsDeflateSession& d = *deflate_;
  if (!d.deflater)
    d.deflater = std::make_unique<detail::WsDeflater>(d.agreed.compress_bits, d.options.level,
                                                      d.options.mem_level, d.agreed.compress_reset);
  d.deflater->compress(payload, d.buffer);
  send_frame(opcode, d.buffer, true);
}

void WebSocketProtocol::send_frame(WsOpcode opcode, std::string_view payload, bool rsv1) {
  if (!has_transport()) return;
  char head[ws_max_header];
  if (role_ == WsRole::server) {
    const std::size_t n = ws_frame_header(head, opcode, true, rsv1, payload.size());
    const std::array<std::string_view, 2> parts{std::string_view(head, n), payload};
    transport().write_sequence(parts);
    return;
  }
  unsigned char key[4];
  next_mask(key);
  const std::size_t n = ws_frame_header(head, opcode, true, rsv1, payload.size(), key);
  std::string frame;
  frame.reserve(n + payload.size());
  frame.append(head, n);
  frame.append(payload);
  ws_mask(frame.data() + n, payload.size(), key);
  transport().write(std::move(frame));
}

// A client masks with a fresh key per frame (xorshift, seeded from random_device).
void WebSocketProtocol::next_mask(unsigned char* key) noexcept {
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 17;
  mask_state_ ^= mask_state_ << 5;
  for (int i = 0; i < 4; ++i) key[i] = static_cast<unsigned char>(mask_state_ >> (8 * i));
}

// A frame whose payload the transport takes without a copy: the header is written
// first (corked with it inside a turn), a client masks the payload in place.
void WebSocketProtocol::send_owned_frame(WsOpcode opcode, std::string&& payload) {
  if (!has_transport()) return;
  char head[ws_max_header];
  std::size_t n;
  if (role_ == WsRole::server) {
    n = ws_frame_header(head, opcode, true, false, payload.size());
  } else {
    unsigned char key[4];
    next_mask(key);
    n = ws_frame_header(head, opcode, true, false, payload.size(), key);
    ws_mask(payload.data(), payload.size(), key);
  }
  transport().write(std::string_view(head, n));
  transport().write(std::move(payload));
}

}  // namespace torsion::web
