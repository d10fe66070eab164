#pragma once
/// \file
/// The small "wire" services of RFCs 862-867: Echo, Discard, Chargen, Daytime, QOTD.

#include <cstddef>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/transport.hpp"

namespace torsion {

/// Echo (RFC 862): writes back every byte it receives.
class Echo : public Protocol {
 public:
  /// Writes `data` back.
  void data_received(std::string_view data) override;
};

/// Discard (RFC 863): reads and drops everything.
class Discard : public Protocol {
 public:
  /// Drops `data`.
  void data_received(std::string_view data) override;
};

/// Chargen (RFC 864): sends lines of 72 printable ASCII characters, each starting one
/// character further along the 95-character cycle, until the peer closes. It registers
/// itself with the transport as a pull producer: it writes one chunk of kLinesPerChunk
/// lines each time the transport's write buffer empties, so a slow reader never makes
/// it queue more than one chunk. Input is discarded.
class Chargen : public Protocol, public Producer {
 public:
  /// Lines written per resume_producing().
  static constexpr std::size_t kLinesPerChunk = 64;
  /// Bytes per line, CRLF included.
  static constexpr std::size_t kLineSize = 74;

  /// Registers as the transport's pull producer (the first chunk follows from it).
  void connection_made() override;
  /// Drops the input.
  void data_received(std::string_view data) override;
  /// Stops producing.
  void connection_lost(const Reason& reason) override;

  /// Nothing to do for a pull producer.
  void pause_producing() override {}
  /// Writes the next chunk (the transport calls it when its buffer is empty).
  void resume_producing() override;
  /// Writes no more.
  void stop_producing() override { stopped_ = true; }

  /// How many lines were written so far.
  std::size_t lines_sent() const noexcept { return line_; }

  /// Line `n` (0-based) of the endless chargen output, CRLF included.
  static std::string line(std::size_t n);

 private:
  std::string chunk_;
  std::size_t line_ = 0;
  bool stopped_ = false;
};

/// Daytime (RFC 867): on connection, writes the current UTC time in the form
/// "Thu Nov 26 05:23:04 2026\r\n" (as Twisted, C's asctime format) and closes.
class Daytime : public Protocol {
 public:
  /// `clock` gives the time to report (default: std::time).
  explicit Daytime(std::function<std::time_t()> clock = {});
  /// Writes the time and closes.
  void connection_made() override;

  /// The daytime line for `t`, CRLF included.
  static std::string format(std::time_t t);

 private:
  std::function<std::time_t()> clock_;
};

/// Quote of the Day (RFC 865): on connection, writes the quote and CRLF, and closes.
class Qotd : public Protocol {
 public:
  /// `quote` is written, followed by CRLF, to every client.
  explicit Qotd(std::string quote = "An apple a day keeps the doctor away.");
  /// Writes the quote and closes.
  void connection_made() override;

 private:
  std::string quote_;
};

}  // namespace torsion
