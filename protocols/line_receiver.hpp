#pragma once
/// \file
/// LineReceiver (lines with a raw-data mode) and LineOnlyReceiver (lines only, leaner).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/reason.hpp"

namespace torsion {

/// A protocol that splits its input into lines ended by a delimiter (default "\r\n") and
/// can switch to a raw mode in which bytes are handed over unsplit (Twisted's
/// LineReceiver). Subclass it and override line_received (and raw_data_received if you
/// use raw mode).
///
/// With the default delimiter, a peer that ends its lines with a bare "\n" (nc, shell
/// scripts) never completes a line: pass "\n" to the constructor or set_delimiter (and
/// drop a trailing '\r' from each line to accept both).
///
/// Guarantees, whatever way the peer's bytes are split into reads:
///  - the same lines, raw data and switches come out in the same order: no byte is lost
///    or repeated when the mode changes, from inside a callback or outside;
///  - a line longer than max_length() (without its delimiter) is never delivered: the
///    receiver calls line_length_exceeded once a line is known to be too long (when its
///    delimiter arrives, or as soon as max_length() + delimiter size bytes have arrived
///    without one), so it buffers at most that many bytes of a pending line;
///  - after the transport is closed (lose_connection or abort_connection, from a
///    callback or anywhere) no further line or raw data is delivered.
///
/// Pausing. pause_producing() on the receiver stops the transport reading and also stops
/// the delivery of lines already buffered (the rest of the current read); they are
/// delivered, in order, by resume_producing(). Pausing only the transport
/// (transport().pause_producing()) stops further reads but, as in Twisted, the lines
/// already received in the current read are still delivered.
///
/// Views passed to callbacks are valid only during the call.
class LineReceiver : public Protocol {
 public:
  /// Twisted's default maximum line length.
  static constexpr std::size_t kDefaultMaxLength = 16384;

  /// Throws std::invalid_argument for an empty delimiter.
  explicit LineReceiver(std::string delimiter = "\r\n", std::size_t max_length = kDefaultMaxLength);

  /// One complete line, without its delimiter. May call any member, including
  /// set_raw_mode, set_line_mode, clear_line_buffer, pause_producing, set_delimiter, and
  /// close the transport.
  virtual void line_received(std::string_view line) = 0;

  /// Bytes received in raw mode (everything buffered at the time, then each read as it
  /// comes). May call set_line_mode(extra) to hand back bytes that belong to line mode.
  /// The default discards them.
  virtual void raw_data_received(std::string_view data) { (void)data; }

  /// A line is too long. `line` is the over-long line when its delimiter has arrived, or
  /// else its beginning (every byte buffered, at least max_length() + 1). The default
  /// records a Reason of kind error::line_too_long (see rejection()) and closes the
  /// connection with lose_connection(). An override that keeps the connection open gets
  /// the next line after the over-long one: the receiver skips everything up to and
  /// including its delimiter (unlike Twisted, which drops the whole buffer, so that the
  /// outcome never depends on how the input was split).
  virtual void line_length_exceeded(std::string_view line);

  /// Writes `line` followed by the delimiter, in one write.
  void send_line(std::string_view line);

  /// From now on, buffered and incoming bytes go to raw_data_received.
  void set_raw_mode();
  /// From now on, bytes are split into lines; `extra` is parsed first, ahead of any byte
  /// not yet delivered (use it to hand back the part of raw data that was not consumed).
  /// Outside a callback the buffered lines (and `extra`) are delivered before it returns.
  void set_line_mode(std::string_view extra = {});
  /// True in line mode (the initial mode).
  bool line_mode() const noexcept { return line_mode_; }

  /// Discards and returns every byte received but not yet delivered (inside
  /// line_received: everything after the current line).
  std::string clear_line_buffer();

  /// Pauses the transport and the delivery of buffered lines (see the class comment).
  void pause_producing();
  /// Resumes the transport and delivers the lines buffered while paused, before it
  /// returns (unless called from inside a callback: then the current loop goes on).
  void resume_producing();
  /// True between pause_producing and resume_producing.
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
  /// max_length() + delimiter size; while paused it also holds the lines of the read that
  /// was interrupted, and once the transport is closed the rest of the last read.
  std::size_t buffered_size() const noexcept { return buffer_.size(); }

  /// Splits `data` into lines (or raw data) as described above. Transports call it.
  void data_received(std::string_view data) override;

 protected:
  /// Records `reason` as the rejection and closes the connection cleanly.
  void reject(Reason reason);

 private:
  void process(std::string_view incoming);
  bool stopped() const;

  std::string delimiter_;
  std::size_t max_length_;
  std::string buffer_;       // bytes received and not yet delivered (outside process())
  std::string inject_;       // set_line_mode(extra) from a callback, spliced in next
  std::string_view work_;    // inside process(): the bytes being parsed
  std::size_t pos_ = 0;      // inside process(): how much of work_ is consumed
  std::size_t scanned_ = 0;  // bytes after pos_ known to hold no delimiter start
  bool line_mode_ = true;
  bool discarding_ = false;  // skipping an over-long line up to its delimiter
  bool paused_ = false;
  bool processing_ = false;
  std::optional<Reason> rejection_;
};

/// A leaner line receiver without raw mode or pausing of buffered lines (Twisted's
/// LineOnlyReceiver): every complete line in a read is delivered, until the transport is
/// closed. Same limits and outcome on an over-long line as LineReceiver.
class LineOnlyReceiver : public Protocol {
 public:
  /// Twisted's default maximum line length.
  static constexpr std::size_t kDefaultMaxLength = 16384;

  /// Throws std::invalid_argument for an empty delimiter.
  explicit LineOnlyReceiver(std::string delimiter = "\r\n",
                            std::size_t max_length = kDefaultMaxLength);

  /// One complete line, without its delimiter; the view is valid during the call.
  virtual void line_received(std::string_view line) = 0;
  /// A line is too long; as LineReceiver::line_length_exceeded (the default records
  /// error::line_too_long in rejection() and calls lose_connection(); an override that
  /// keeps the connection gets the line after the over-long one).
  virtual void line_length_exceeded(std::string_view line);
  /// Writes `line` followed by the delimiter, in one write.
  void send_line(std::string_view line);

  /// The delimiter (fixed at construction).
  const std::string& delimiter() const noexcept { return delimiter_; }
  /// The maximum line length, in bytes without the delimiter.
  std::size_t max_length() const noexcept { return max_length_; }
  /// Why the receiver gave up on its input, or nothing.
  const std::optional<Reason>& rejection() const noexcept { return rejection_; }
  /// Bytes received and not yet delivered: while connected, less than max_length() +
  /// delimiter size; once the transport is closed, also the rest of the last read.
  std::size_t buffered_size() const noexcept { return buffer_.size(); }

  /// Splits `data` into lines. Transports call it.
  void data_received(std::string_view data) override;

 private:
  std::string delimiter_;
  std::size_t max_length_;
  std::string buffer_;
  std::size_t scanned_ = 0;
  bool discarding_ = false;
  std::optional<Reason> rejection_;
};

}  // namespace torsion
