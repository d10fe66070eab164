#pragma once
/// \file
/// The WebSocket wire format (RFC 6455 section 5): an incremental frame parser that
/// enforces every framing rule, the frame header encoder, masking, close payloads and an
/// incremental UTF-8 validator. WebSocketProtocol (web/websocket.hpp) is built on these;
/// they are public so that other transports and tools can reuse them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace torsion::web {

/// Frame opcodes (RFC 6455 5.2); the others are reserved and rejected.
enum class WsOpcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// Close status codes (RFC 6455 7.4.1) that torsion sends or reports.
namespace ws_close {
inline constexpr std::uint16_t normal = 1000;            ///< done
inline constexpr std::uint16_t going_away = 1001;        ///< server shutting down, page left
inline constexpr std::uint16_t protocol_error = 1002;    ///< a framing rule was broken
inline constexpr std::uint16_t unsupported_data = 1003;  ///< a message type it cannot take
inline constexpr std::uint16_t no_status = 1005;         ///< (reported only) close without code
inline constexpr std::uint16_t abnormal = 1006;          ///< (reported only) no close frame
inline constexpr std::uint16_t invalid_payload = 1007;   ///< text that is not UTF-8
inline constexpr std::uint16_t policy_violation = 1008;  ///< refused by policy
inline constexpr std::uint16_t message_too_big = 1009;   ///< over the message size limit
inline constexpr std::uint16_t mandatory_extension = 1010;  ///< (client) extension missing
inline constexpr std::uint16_t internal_error = 1011;    ///< the endpoint failed
}  // namespace ws_close

/// True for a code a peer may put in a Close frame: 1000-1003, 1007-1014 and 3000-4999
/// (1004-1006 and 1015 are reserved for reporting, the rest unassigned).
bool ws_close_code_valid(std::uint16_t code) noexcept;

/// Which end of the connection: a server reads masked frames and writes unmasked ones,
/// a client the reverse (RFC 6455 5.1).
enum class WsRole { server, client };

/// Checks UTF-8 fed in pieces cut anywhere, including inside a character. Rejects
/// overlong forms, surrogates and code points past U+10FFFF at the first byte that makes
/// the input invalid, as RFC 6455 8.1 asks ("fail fast").
class Utf8Validator {
 public:
  /// Checks `data` as the continuation of everything fed since the last reset. Returns
  /// false at the first invalid byte; once failed it stays failed until reset().
  bool feed(std::string_view data) noexcept;
  /// True if what was fed is valid and ends on a character boundary.
  bool complete() const noexcept { return need_ == 0 && !failed_; }
  /// True once an invalid byte was seen.
  bool failed() const noexcept { return failed_; }
  /// Starts over (a new message).
  void reset() noexcept { *this = Utf8Validator(); }

 private:
  std::uint8_t need_ = 0;    // continuation bytes the current character still needs
  std::uint8_t lo_ = 0x80;   // the range allowed for the next continuation byte
  std::uint8_t hi_ = 0xBF;
  bool failed_ = false;
};

/// What a WsFrameParser enforces besides the fixed rules.
struct WsParserOptions {
  /// The side this parser is on: a server requires masked frames, a client unmasked ones.
  WsRole role = WsRole::server;
  /// The largest message (sum of its frames' payloads) accepted; past it the parser fails
  /// with 1009 as soon as a frame header announces the excess, before its payload.
  std::uint64_t max_message = 1024 * 1024;
  /// RSV1 may be set on a message's first frame (permessage-deflate was negotiated).
  bool allow_rsv1 = false;
  /// The limit for a message with RSV1 set (compressed), on the wire; 0: max_message.
  /// Its inflated size is the reader's to limit.
  std::uint64_t max_compressed = 0;
};

/// An incremental WebSocket frame parser: feed() it bytes cut at any point; it tells a
/// Sink about messages (their payload unmasked, handed over in pieces without buffering
/// the message) and control frames (whole, at most 125 bytes). It fails on the first
/// broken rule with the close code to send: 1002 for a framing error (reserved bits or
/// opcodes, wrong masking for the side, a fragmented or long control frame, a
/// continuation without a message or a new message inside one, a bad close payload),
/// 1007 for text that is not UTF-8 (checked across fragments, unless the message is
/// compressed: then the inflater's reader checks it) and 1009 for a message over
/// `max_message`. It holds at most one frame header and one control payload (139 bytes)
/// plus a scratch buffer for unmasking the current read.
class WsFrameParser {
 public:
  /// Receives the parser's events. A callback may call fail() on the parser; it stops
  /// at once.
  class Sink {
   public:
    virtual ~Sink() = default;
    /// A text or binary message starts; `compressed` when RSV1 was set on it.
    virtual void message_begin(WsOpcode opcode, bool compressed) = 0;
    /// Payload bytes of the current message, unmasked, in order; valid for the call.
    virtual void message_data(std::string_view data) = 0;
    /// Where the current message's payload may go instead: a string the parser appends
    /// the payload to (unmasking it there, growing it geometrically, never past the
    /// message limit), saving a copy; message_data is then not called. Null (the
    /// default): message_data is. Asked for each piece.
    virtual std::string* message_buffer() { return nullptr; }
    /// The current message's last frame ended (its text, if uncompressed, was valid).
    virtual void message_end() = 0;
    /// A whole ping or pong frame (payload at most 125 bytes, valid for the call).
    virtual void control_received(WsOpcode opcode, std::string_view payload) = 0;
    /// A valid close frame: its code (1005 when it had none) and UTF-8 reason. The
    /// parser reads nothing after it.
    virtual void close_received(std::uint16_t code, std::string_view reason) = 0;
  };

  /// A parser for `options.role`.
  explicit WsFrameParser(WsParserOptions options = {});

  /// Parses `data`, calling `sink` for what it completes. Returns the bytes used: all of
  /// them, unless the parser failed or read a close frame (then it stops right there).
  std::size_t feed(std::string_view data, Sink& sink);

  /// Fails the parser with `code` (for rules checked outside, such as a compressed
  /// message's inflated size); the first failure is kept.
  void fail(std::uint16_t code, const char* why) noexcept;
  /// True once a rule was broken; feed() then uses nothing.
  bool failed() const noexcept { return error_code_ != 0; }
  /// The close code for the failure (1002, 1007, 1009, or what fail() was given); 0 if none.
  std::uint16_t error_code() const noexcept { return error_code_; }
  /// What went wrong, for logs and the close reason ("" if nothing).
  const char* error_message() const noexcept { return error_message_; }
  /// True once a close frame was read.
  bool closed() const noexcept { return closed_; }
  /// True while a fragmented message is between its first and last frame.
  bool in_message() const noexcept { return in_message_; }
  /// The options in force.
  const WsParserOptions& options() const noexcept { return options_; }

 private:
  bool take_header(Sink& sink);
  void take_payload(std::string_view piece, Sink& sink);
  void finish_control(Sink& sink);

  WsParserOptions options_;
  // The frame being read.
  unsigned char header_[14] = {};
  std::uint8_t header_size_ = 0;
  bool in_payload_ = false;
  bool fin_ = false;
  bool masked_ = false;
  WsOpcode opcode_ = WsOpcode::continuation;
  unsigned char mask_[4] = {};
  std::size_t mask_offset_ = 0;
  std::uint64_t remaining_ = 0;
  // The control frame's payload, gathered whole.
  char control_[125] = {};
  std::uint8_t control_size_ = 0;
  // The message being read.
  bool in_message_ = false;
  bool text_ = false;
  bool compressed_ = false;
  std::uint64_t message_size_ = 0;
  Utf8Validator utf8_;
  std::string scratch_;  // unmasked bytes of the current read
  bool closed_ = false;
  std::uint16_t error_code_ = 0;
  const char* error_message_ = "";
};

/// The largest frame header: 2 bytes, 8 of extended length, 4 of mask.
inline constexpr std::size_t ws_max_header = 14;

/// Writes the header of a frame into `out` and returns its size (2 to 14 bytes). With
/// `mask` (4 bytes) the frame is masked and the caller masks the payload (ws_mask).
std::size_t ws_frame_header(char* out, WsOpcode opcode, bool fin, bool rsv1,
                            std::uint64_t length, const unsigned char* mask = nullptr) noexcept;

/// XORs `data` with `mask`, starting at byte `offset` of the frame's payload (masking
/// and unmasking are the same operation).
void ws_mask(char* data, std::size_t size, const unsigned char* mask,
             std::size_t offset = 0) noexcept;

/// The payload of a Close frame: `code` in network order, then `reason` cut to fit 125
/// bytes (at a UTF-8 character boundary). Code 1005 gives an empty payload.
std::string ws_close_payload(std::uint16_t code, std::string_view reason);

}  // namespace torsion::web
