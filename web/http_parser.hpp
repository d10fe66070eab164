#pragma once
/// \file
/// HttpParser: a strict, incremental HTTP/1.1 parser for requests and responses (one
/// implementation for both heads), and ChunkedDecoder, the chunked transfer coding on its
/// own. Both are fed bytes at any split point, copy only what they must keep across calls
/// (an unfinished head or chunk-size line, bounded by HttpLimits) and hand body bytes
/// over as views into the caller's input.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "web/http_message.hpp"

namespace torsion::web {

/// Decodes the chunked transfer coding (RFC 9112 section 7.1): chunk-size lines (with
/// extensions, which are checked and ignored), chunk data, the last chunk and the
/// trailer section. Strict: hex sizes only, CRLF line ends, no control characters.
class ChunkedDecoder {
 public:
  /// Receives what the decoder finds, in order.
  class Sink {
   public:
    virtual ~Sink();
    /// Decoded body bytes; the view is valid only during the call.
    virtual void chunk_data(std::string_view data) = 0;
  };

  /// `limits` bounds the chunk-size line, the body and the trailers.
  explicit ChunkedDecoder(const HttpLimits& limits = {}) : limits_(limits) {}

  /// Decodes from `data`, calling sink.chunk_data for body bytes; returns how many bytes
  /// it used. It stops after the end of the trailer section (done() turns true; the rest
  /// of `data` belongs to whatever follows) or at the first error (failed(); nothing more
  /// is consumed). Calling it when done() or failed() consumes nothing.
  std::size_t feed(std::string_view data, Sink& sink);
  /// True once the last chunk and the trailer section have been read.
  bool done() const noexcept { return state_ == State::done; }
  /// The error, once the input was refused (400, 413 or 431).
  const std::optional<HttpError>& error() const noexcept { return error_; }
  /// True once the input was refused.
  bool failed() const noexcept { return error_.has_value(); }
  /// The trailer fields, complete once done().
  const Headers& trailers() const noexcept { return trailers_; }
  /// Decoded body bytes so far.
  std::uint64_t body_size() const noexcept { return body_size_; }
  /// Ready for a new body (the limits stay).
  void reset();
  /// Replaces the limit on the decoded body's size (HttpLimits::max_body).
  void set_max_body(std::uint64_t max_body) noexcept { limits_.max_body = max_body; }

 private:
  enum class State { size_line, data, data_cr, data_lf, trailer_line, done };
  bool fail(int status, const char* message);
  bool size_line_complete(std::string_view line);
  bool trailer_line_complete(std::string_view line);

  HttpLimits limits_;
  State state_ = State::size_line;
  std::string line_;  // an unfinished line (size line or trailer field), bounded
  std::uint64_t remaining_ = 0;
  std::uint64_t body_size_ = 0;
  std::size_t trailer_bytes_ = 0;
  Headers trailers_;
  std::optional<HttpError> error_;
};

/// Parses one HTTP/1.1 message after another from a byte stream: the request or status
/// line, the header fields (checked as RFC 9112 requires of a recipient), then the body
/// as Content-Length, chunked or (responses only) delimited by the connection's close.
/// Refusals, with the status a server answers: request line or target too long 414; a
/// field line, the head or the field count too large 431; body larger than max_body
/// 413; an HTTP version other than 1.0 or 1.1 505; a transfer coding other than chunked
/// 501; and 400 for a malformed start line, a missing (HTTP/1.1) or repeated Host, white
/// space before a colon, obs-fold, control characters, an invalid or conflicting
/// Content-Length, Content-Length together with Transfer-Encoding, and chunked not last.
///
/// Not thread-safe; no allocation for body bytes (they are handed over as views).
class HttpParser {
 public:
  /// Which kind of message it parses.
  enum class Kind { request, response };

  /// Receives the parts of each message, in order: head_received once, body_data any
  /// number of times, message_complete once.
  class Sink {
   public:
    virtual ~Sink();
    /// The head is complete. The Sink may move what it wants out of `head`.
    virtual void head_received(HttpHead& head) = 0;
    /// Body bytes (decoded from chunked); the view is valid only during the call.
    virtual void body_data(std::string_view data) = 0;
    /// The message ended; `trailers` holds the chunked trailer fields (else empty).
    virtual void message_complete(const Headers& trailers) = 0;
    /// A message with a body (a request with Content-Length or chunked, a response that
    /// may have one): called once its head is parsed and valid, before the body's size
    /// is checked; returns the limit on this body's size (`limit`, HttpLimits::max_body,
    /// unless the sink overrides it).
    virtual std::uint64_t body_limit(const HttpHead& head, std::uint64_t limit);
  };

  /// A parser of `kind` messages calling `sink`, bounded by `limits`.
  HttpParser(Kind kind, Sink& sink, const HttpLimits& limits = {});

  /// Parses from `data` and returns how many bytes it used. It stops right after a
  /// message completes (message_complete has been called; feed again with the rest for
  /// the next message, which lets a server answer pipelined requests one at a time) and
  /// at the first error (failed() turns true; nothing more is consumed until reset()).
  /// Empty lines before a request line are skipped (RFC 9112 section 2.2).
  std::size_t feed(std::string_view data);
  /// The peer closed its side: completes a close-delimited response body; anywhere
  /// inside a message it is an error (400 "connection closed inside a message").
  /// Returns true if the stream ended cleanly (between messages or after such a body).
  bool feed_eof();

  /// Called from a Sink callback: feed() returns right after that callback, leaving the
  /// rest of its input unused (a server that wants a request's body in measured pieces
  /// stops after the head).
  void yield() noexcept { yield_ = true; }

  /// For a response parser: the next response answers a HEAD request (no body whatever
  /// its headers say). Set before its head is fed; cleared when the message completes.
  void expect_head_response(bool head) noexcept { head_response_ = head; }

  /// True between the first byte of a message and its end.
  bool in_message() const noexcept { return state_ != State::idle; }
  /// True once the input was refused.
  bool failed() const noexcept { return error_.has_value(); }
  /// The refusal, once failed().
  const std::optional<HttpError>& error() const noexcept { return error_; }
  /// Forgets any partial message and error; ready for a new stream.
  void reset();
  /// The limits in force.
  const HttpLimits& limits() const noexcept { return limits_; }

 private:
  enum class State { idle, start_line, fields, body_length, body_chunked, body_until_close };
  struct ChunkSink;
  void fail(int status, const char* message);
  bool parse_start_line(std::string_view line);
  bool frame_body();
  void complete();

  Kind kind_;
  Sink& sink_;
  HttpLimits limits_;
  State state_ = State::idle;
  std::string line_;            // an unfinished head line, bounded by the line limits
  HttpHead head_;               // the head being parsed
  std::size_t head_bytes_ = 0;  // bytes of the head so far, bounded by limits_.max_head
  std::uint64_t remaining_ = 0;
  std::uint64_t body_size_ = 0;
  std::uint64_t body_limit_ = 0;  // this message's limit on its body
  bool head_response_ = false;
  bool yield_ = false;  // yield() was called during this feed
  ChunkedDecoder chunked_;
  std::optional<HttpError> error_;
};

/// Parses a header field line ("Name: value", no line end) into `headers`, as HttpParser
/// does: token name, no white space before the colon, optional white space around the
/// value, no control characters. Returns false (and sets `error`) on a malformed line.
bool parse_field_line(std::string_view line, Headers& headers, std::optional<HttpError>& error);

}  // namespace torsion::web
