#pragma once
/// \file
/// WebSocketProtocol (RFC 6455): messages over an upgraded connection, for servers (see
/// web/websocket_server.hpp) and clients. Subclass it and override message_received, or
/// co_await receive():
///
///     struct Echo : WebSocketProtocol {
///       void message_received(Message m) override { send(std::move(m)); }
///     };

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reason.hpp"
#include "web/websocket_frame.hpp"

namespace torsion::web {

namespace detail {
struct WsSetup;
struct WsDeflateSession;
}  // namespace detail

/// A whole WebSocket message.
struct Message {
  /// Text (valid UTF-8) or binary.
  enum class Type { text, binary };
  /// Its type.
  Type type = Type::text;
  /// Its payload (for text, UTF-8).
  std::string data;
  /// True for a text message.
  bool text() const noexcept { return type == Type::text; }
  /// True for a binary message.
  bool binary() const noexcept { return type == Type::binary; }
};

/// How a WebSocket connection ended.
struct WsCloseStatus {
  /// The code of the close handshake: the peer's (1005 if its close frame had none), or
  /// the one this side sent when it failed the connection (1002, 1007, 1009, 1011); 1006
  /// when the connection ended without a close frame.
  std::uint16_t code = ws_close::abnormal;
  /// The close frame's reason (UTF-8), or what went wrong.
  std::string reason;
  /// True when both sides exchanged close frames.
  bool clean = false;
  /// How the underlying connection ended.
  Reason transport_reason;
};

/// receive() after the connection closed, or a receive() pending when it closed.
class WebSocketClosedError : public std::runtime_error {
 public:
  /// what() is "WebSocket closed: <code> <reason>".
  explicit WebSocketClosedError(WsCloseStatus status);
  /// How it closed.
  const WsCloseStatus& status() const noexcept { return status_; }

 private:
  WsCloseStatus status_;
};

/// permessage-deflate (RFC 7692), for websocket() servers and connect_websocket clients.
/// On by default, as in python websockets: a client offers it, a server accepts an offer.
/// Either side may still send a message uncompressed; received compressed messages are
/// bounded by WebSocketOptions::max_message after inflation (1009 past it).
struct WsDeflateOptions {
  /// Negotiate it at all.
  bool enabled = true;
  /// The window this side compresses with, 9..15 (zlib's windowBits; memory per
  /// connection grows with it); lowered to what the peer asks. A peer that asks for 8,
  /// which zlib cannot produce, gets this side's messages uncompressed.
  int window_bits = 12;
  /// zlib's memLevel for this side's compressor, 1..9.
  int mem_level = 5;
  /// zlib's compression level, 0..9 (or -1: zlib's default).
  int level = 6;
  /// Compress each message on its own (no_context_takeover for this side's messages):
  /// less memory kept between messages, less compression.
  bool no_context_takeover = false;
  /// Ask the peer to compress each message on its own (a server asks every client; a
  /// client asks the server, which must then agree).
  bool peer_no_context_takeover = false;
  /// Ask the peer to compress with at most this window, 9..15 (15: no request). A server
  /// can ask only a client that offered client_max_window_bits, as browsers do.
  int peer_window_bits = 15;
};

/// Limits and timers of a WebSocket connection; every time is in seconds, 0 turns it off.
struct WebSocketOptions {
  /// The largest message accepted (sum of its fragments, after inflation); past it the
  /// connection is closed with 1009.
  std::uint64_t max_message = 1024 * 1024;
  /// After this side sent its close frame: how long to wait for the peer's close frame
  /// (and the end of the connection) before aborting the connection.
  double close_timeout = 5;
  /// Keep-alive: send a ping this often (0: never).
  double ping_interval = 0;
  /// A peer that does not answer a keep-alive ping within this is dead: the connection
  /// is closed with 1011 and aborted.
  double ping_timeout = 20;
  /// Messages kept for receive() before reading from the connection pauses (the
  /// coroutine side is not keeping up); reading resumes when receive() takes them.
  std::size_t max_queue = 16;
};

/// One WebSocket connection, after the opening handshake. Events come from the reactor
/// loop, never re-entered, like every Protocol's. The upgrade (websocket(), in
/// web/websocket_server.hpp) or the client connect sets it up; it then frames, unmasks,
/// checks and assembles messages, answers pings, runs the close handshake and the
/// keep-alive, and fails the connection with the right close code on any protocol error
/// (1002 framing, 1007 invalid UTF-8, 1009 too big). Sends after close() or after the
/// connection ended are dropped.
class WebSocketProtocol : public Protocol, private WsFrameParser::Sink {
 public:
  /// A protocol with `options`.
  explicit WebSocketProtocol(WebSocketOptions options = {});
  ~WebSocketProtocol() override;

  // Events.
  /// The connection is open: messages can be sent.
  virtual void connection_opened() {}
  /// A whole message arrived. The default keeps it for receive() (and pauses reading
  /// when max_queue messages wait); override it to handle messages as they come.
  virtual void message_received(Message message);
  /// A pong arrived (the answer to ping(), or an unsolicited one).
  virtual void pong_received(std::string_view payload) { (void)payload; }
  /// The connection is over (after the close handshake, a failure, or a lost
  /// connection); called once, from connection_lost. transport() is still valid.
  virtual void connection_closed(const WsCloseStatus& status) { (void)status; }

  // Commands.
  /// Sends a text message; throws std::invalid_argument if `text` is not UTF-8.
  void send_text(std::string_view text);
  /// Sends a binary message.
  void send_binary(std::string_view data);
  /// Sends `message` as its type (text must be UTF-8, else std::invalid_argument), taking
  /// its bytes instead of copying them where it can: an echo is send(std::move(message)).
  void send(Message message);
  /// Sends a ping; throws std::invalid_argument for a payload over 125 bytes.
  void ping(std::string_view payload = {});
  /// Starts the close handshake with `code` (1000, or 1001-1003, 1007-1014, 3000-4999;
  /// else std::invalid_argument) and a reason (cut to fit 123 bytes). The connection
  /// ends when the peer answers, or after close_timeout. Does nothing if not open.
  void close(std::uint16_t code = ws_close::normal, std::string_view reason = {});
  /// The next message, for coroutines and Deferred chains: fires at once if one is
  /// queued, else when one arrives; fails with WebSocketClosedError once the connection is
  /// over. Only while message_received is not overridden.
  Deferred<Message> receive();

  // State.
  /// True between the opening handshake and the start of the close handshake.
  bool is_open() const noexcept { return state_ == State::open; }
  /// The subprotocol agreed in the handshake ("" if none).
  const std::string& subprotocol() const noexcept { return subprotocol_; }
  /// Which side this is.
  WsRole role() const noexcept { return role_; }
  /// The options in force.
  const WebSocketOptions& options() const noexcept { return options_; }
  /// True when permessage-deflate was negotiated in the handshake.
  bool compression() const noexcept { return deflate_ != nullptr; }

  // Protocol: WebSocketProtocol handles the bytes itself.
  void connection_made() final;
  void data_received(std::string_view data) final;
  bool eof_received() final;
  void connection_lost(const Reason& reason) final;

 private:
  friend struct detail::WsSetup;
  enum class State { idle, open, closing, closed };

  // WsFrameParser::Sink
  void message_begin(WsOpcode opcode, bool compressed) override;
  void message_data(std::string_view data) override;
  std::string* message_buffer() override;
  void message_end() override;
  void control_received(WsOpcode opcode, std::string_view payload) override;
  void close_received(std::uint16_t code, std::string_view reason) override;

  void inflate(int result);
  void send_message(WsOpcode opcode, std::string_view payload);
  void send_frame(WsOpcode opcode, std::string_view payload, bool rsv1 = false);
  void send_owned_frame(WsOpcode opcode, std::string&& payload);
  void next_mask(unsigned char* key) noexcept;
  void fail(std::uint16_t code, std::string_view why);
  void keepalive_tick();
  void cancel_timers();

  WebSocketOptions options_;
  Scheduler* scheduler_ = nullptr;
  WsRole role_ = WsRole::server;
  std::string subprotocol_;
  State state_ = State::idle;
  WsFrameParser parser_;
  Message current_;
  WsCloseStatus status_;
  std::deque<Message> queue_;
  std::deque<Deferred<Message>> waiters_;
  bool reading_paused_ = false;
  DelayedCall close_timer_;
  DelayedCall ping_timer_;
  DelayedCall pong_deadline_;
  std::uint32_t mask_state_ = 0;
  std::unique_ptr<detail::WsDeflateSession> deflate_;  // null unless negotiated
  bool inflating_ = false;  // the current message is compressed
  Utf8Validator inflated_utf8_;  // a compressed text message's inflated bytes
  std::size_t inflated_checked_ = 0;  // of them, checked so far
};

}  // namespace torsion::web
