#pragma once
/// \file
/// LineReceiver (lines with raw modes) and LineOnlyReceiver (lines only, leaner).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/reason.hpp"
#include "framework/transport.hpp"

namespace torsion {

/// A protocol that splits its input into lines ended by a delimiter (default "\r\n") and
/// can switch to raw modes in which bytes are handed over unsplit (Twisted's
/// LineReceiver). Subclass it and override line_received (and raw_data_received if you
/// use a raw mode). docs/protocols.md lists where it differs from Twisted.
///
/// With the default delimiter, a peer that ends its lines with a bare "\n" (nc, shell
/// scripts) never completes a line: pass "\n" to the constructor or set_delimiter (and
/// drop a trailing '\r' from each line to accept both).
///
/// Guarantees:
///  - whatever way the peer's bytes are split into reads, the same lines, raw data and
///    switches come out in the same order (raw pieces may be cut differently): no byte is
///    lost or repeated when the mode changes, from inside a callback or outside;
///  - linear cost: bytes are parsed in place in the read that brought them; a mode switch
///    copies nothing, and only the bytes a read leaves unconsumed (an incomplete line, or
///    the rest of a read while paused) are kept;
///  - a line longer than max_length() (without its delimiter) is never delivered: the
///    receiver calls line_length_exceeded once the line is known to be too long (when its
///    delimiter arrives, or as soon as max_length() + delimiter size bytes have arrived
///    without one), so it buffers at most that many bytes of a pending line;
///  - after the transport is closed (lose_connection or abort_connection, from a
///    callback or anywhere) no further line or raw data is delivered.
///
/// Re-entry: data_received called from inside one of the receiver's callbacks appends the
/// bytes after everything not yet delivered and returns; they are delivered by the loop
/// already running (Twisted's rule).
///
/// Pausing. The receiver is a Producer: pause_producing() stops the transport reading and
/// also stops the delivery of lines already buffered (the rest of the current read); they
/// are delivered, in order, by resume_producing(). Register it with another transport
/// (register_producer(receiver, true)) to stop reading and parsing while that transport's
/// write buffer is full. Pausing only the transport (transport().pause_producing()) stops
/// further reads but, as in Twisted, the lines already received in the current read are
/// still delivered.
///
/// Views passed to callbacks are valid only during the call.
class LineReceiver : public Protocol, public Producer {
 public:
  /// Twisted's default maximum line length.
  static constexpr std::size_t kDefaultMaxLength = 16384;

  /// Throws std::invalid_argument for an empty delimiter.
  explicit LineReceiver(std::string delimiter = "\r\n", std::size_t max_length = kDefaultMaxLength);

  /// One complete line, without its delimiter. May call any member, including
  /// set_raw_mode, expect_raw, set_line_mode, clear_line_buffer, pause_producing,
  /// set_delimiter, data_received, and close the transport.
  virtual void line_received(std::string_view line) = 0;

  /// Bytes received in a raw mode. After set_raw_mode(): everything available, as it
  /// comes (call set_line_mode(extra) to hand back bytes that belong to line mode; when
  /// `extra` is the tail of `data`, nothing is copied). After expect_raw(n): the next n
  /// bytes in one or more pieces; raw_remaining() says how many are still to come, and
  /// during the last piece (raw_remaining() == 0) the receiver is already back in line
  /// mode. The default discards the bytes.
  virtual void raw_data_received(std::string_view data) { (void)data; }

  /// A line is too long. As in Twisted, `data` is the over-long line followed by its
  /// delimiter and by everything else received and not yet delivered, or, when no
  /// delimiter came in time, every byte not yet delivered (at least max_length() +
  /// delimiter size); those bytes are then dropped. The default records a Reason of
  /// kind error::line_too_long (see rejection()) and closes the connection with
  /// lose_connection(). An override that keeps the connection goes on with the bytes
  /// that arrive next, as if they began a line.
  virtual void line_length_exceeded(std::string_view data);

  /// Writes `line` followed by the delimiter, in one write.
  void send_line(std::string_view line);

  /// From now on, buffered and incoming bytes go to raw_data_received, until
  /// set_line_mode or expect_raw.
  void set_raw_mode();
  /// Hands the next `count` bytes to raw_data_received (in pieces, as they arrive; none
  /// is copied), then returns to line mode by itself: the natural way to read a payload
  /// whose length a line announced (RESP bulk strings, HTTP bodies with Content-Length,
  /// memcached data blocks). expect_raw(0) stays in line mode. Called outside a callback,
  /// buffered bytes are delivered before it returns.
  void expect_raw(std::size_t count);
  /// Bytes still to come after the current piece of an expect_raw(n); 0 otherwise.
  std::size_t raw_remaining() const noexcept { return raw_left_; }
  /// From now on, bytes are split into lines; `extra` is parsed first, ahead of any byte
  /// not yet delivered (use it to hand back the part of raw data that was not consumed).
  /// Outside a callback the buffered lines (and `extra`) are delivered before it returns.
  void set_line_mode(std::string_view extra = {});
  /// True in line mode (the initial mode).
  bool line_mode() const noexcept { return mode_ == Mode::line; }

  /// Discards and returns every byte received but not yet delivered (inside
  /// line_received: everything after the current line).
  std::string clear_line_buffer();

  /// Pauses the transport and the delivery of buffered lines (see the class comment).
  /// Idempotent.
  void pause_producing() override;
  /// Resumes the transport and delivers the lines buffered while paused, before it
  /// returns (unless called from inside a callback: then the current loop goes on).
  void resume_producing() override;
  /// Stops for good: stops delivering and closes the transport (lose_connection), as
  /// Twisted's stopProducing.
  void stop_producing() override;
  /// True between pause_producing (or stop_producing) and resume_producing.
  bool paused() const noexcept { return paused_; }

  /// The delimiter in force.
  const std::string& delimiter() const noexcept { return delimiter_; }
  /// Changes the delimiter; it applies to the bytes not yet split. Throws
  /// std::invalid_argument if empty.
  void set_delimiter(std::string delimiter);
  /// The maximum line length, in bytes without the delimiter.
  std::size_t max_length() const noexcept { return max_length_; }
  /// Changes the maximum line length.
  void set_max_length(std::size_t max_length);

  /// Why the receiver gave up on its input (set by the default line_length_exceeded),
  /// or nothing.
  const std::optional<Reason>& rejection() const noexcept { return rejection_; }

  /// Bytes received and held, not yet delivered (read it outside the receiver's own
  /// callbacks). While connected, in line mode and not paused, it is less than
  /// max_length() + delimiter size; while paused it also holds the rest of the read that
  /// was interrupted, and once the transport is closed the rest of the last read.
  std::size_t buffered_size() const noexcept { return buffer_.size() - start_; }

  /// Splits `data` into lines (or raw data) as described above. Transports call it.
  void data_received(std::string_view data) override;

 protected:
  /// Records `reason` as the rejection and closes the connection cleanly.
  void reject(Reason reason);

 private:
  enum class Mode { line, raw, counted };
  enum class Stop { end, partial, blocked, inject };

  void process(std::string_view data);
  Stop parse(std::string_view bytes, std::size_t& pos);
  void join_line();
  void exceeded(std::string_view bytes, std::size_t from);
  bool stopped() const;

  std::string delimiter_;
  std::size_t max_length_;
  // Bytes kept between reads, from start_: an incomplete line, or what a pause held up.
  std::string buffer_;
  std::size_t start_ = 0;
  std::size_t scanned_ = 0;     // bytes of the pending line known to hold no delimiter start
  std::string inject_;          // set_line_mode(extra) from a callback, parsed next
  std::string reentered_;       // data_received from a callback, parsed after the rest
  std::string_view current_;    // inside process(): the bytes being parsed in place
  std::size_t* pos_ = nullptr;  // inside process(): how much of current_ is consumed
  std::size_t raw_from_ = 0;    // inside raw_data_received: where its piece starts
  std::string_view later_;      // inside process(): the read not yet reached
  std::size_t raw_left_ = 0;
  Mode mode_ = Mode::line;
  bool paused_ = false;
  bool processing_ = false;
  std::optional<Reason> rejection_;
};

/// A leaner line receiver without raw modes or pausing of buffered lines (Twisted's
/// LineOnlyReceiver): every complete line in a read is delivered, until the transport is
/// closed.
class LineOnlyReceiver : public Protocol {
 public:
  /// Twisted's default maximum line length.
  static constexpr std::size_t kDefaultMaxLength = 16384;

  /// Throws std::invalid_argument for an empty delimiter.
  explicit LineOnlyReceiver(std::string delimiter = "\r\n",
                            std::size_t max_length = kDefaultMaxLength);

  /// One complete line, without its delimiter; the view is valid during the call.
  virtual void line_received(std::string_view line) = 0;
  /// A line is too long. As in Twisted it is called as soon as the pending line exceeds
  /// max_length() (a trailing part of a delimiter is not counted), with the bytes of the
  /// line received so far, or, for a line that arrived whole, with the line without its
  /// delimiter. The default records error::line_too_long in rejection() and calls
  /// lose_connection(); an override that keeps the connection gets the line after the
  /// over-long one (the rest of it is skipped up to its delimiter).
  virtual void line_length_exceeded(std::string_view line);
  /// Writes `line` followed by the delimiter, in one write.
  void send_line(std::string_view line);

  /// The delimiter (fixed at construction).
  const std::string& delimiter() const noexcept { return delimiter_; }
  /// The maximum line length, in bytes without the delimiter.
  std::size_t max_length() const noexcept { return max_length_; }
  /// Why the receiver gave up on its input, or nothing.
  const std::optional<Reason>& rejection() const noexcept { return rejection_; }
  /// Bytes received and not yet delivered: while connected, at most max_length() +
  /// delimiter size; once the transport is closed, also the rest of the last read.
  std::size_t buffered_size() const noexcept { return buffer_.size(); }

  /// Splits `data` into lines. Transports call it.
  void data_received(std::string_view data) override;

 private:
  std::size_t split(std::string_view bytes);

  std::string delimiter_;
  std::size_t max_length_;
  std::string buffer_;
  std::size_t scanned_ = 0;
  bool discarding_ = false;
  std::optional<Reason> rejection_;
};

}  // namespace torsion
