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
  void data_received(std::string_view data) override;
};

/// Discard (RFC 863): reads and drops everything.
class Discard : public Protocol {
 public:
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

  void connection_made() override;
  void data_received(std::string_view data) override;
  void connection_lost(const Reason& reason) override;

  // Producer: the transport pulls a chunk with resume_producing().
  void pause_producing() override {}
  void resume_producing() override;
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
  void connection_made() override;

  /// The daytime line for `t`, CRLF included.
  static std::string format(std::time_t t);

 private:
  std::function<std::time_t()> clock_;
};

/// Quote of the Day (RFC 865): on connection, writes the quote and CRLF, and closes.
class Qotd : public Protocol {
 public:
  explicit Qotd(std::string quote = "An apple a day keeps the doctor away.");
  void connection_made() override;

 private:
  std::string quote_;
};

}  // namespace torsion
