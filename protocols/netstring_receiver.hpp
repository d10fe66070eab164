#pragma once
/// \file
/// NetstringReceiver: strict netstrings ("5:hello,").

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/reason.hpp"

namespace torsion {

/// Receives netstrings (D. J. Bernstein's format: decimal length, ':', payload, ',') and
/// sends them (Twisted's NetstringReceiver, strict).
///
/// The length is one or more ASCII digits without leading zeros ("0" alone is the empty
/// string) and at most max_length(). Any other input — a non-digit where a digit or ':'
/// is due, an empty length, a leading zero, a length over the limit (detected at the
/// first digit that makes it too large), a missing ',' — is rejected: input_rejected is
/// called once with a Reason (error::malformed_input or error::length_limit_exceeded) and
/// every later byte is ignored. A string is delivered only once its ',' has arrived.
/// The outcome does not depend on how the input is split into reads. Memory held is at
/// most max_length() bytes for a pending string. After the transport is closed nothing
/// more is delivered; pausing the transport inside string_received stops further reads
/// but the strings already received in the current read are still delivered.
class NetstringReceiver : public Protocol {
 public:
  /// Twisted's default limit.
  static constexpr std::size_t kDefaultMaxLength = 99999;
  /// The largest limit accepted (a length of more digits is always rejected).
  static constexpr std::size_t kMaxMaxLength = std::size_t{1} << 48;

  /// Throws std::invalid_argument if max_length exceeds kMaxMaxLength.
  explicit NetstringReceiver(std::size_t max_length = kDefaultMaxLength);

  /// One complete string; the view is valid during the call.
  virtual void string_received(std::string_view payload) = 0;
  /// The peer broke the format. The default calls lose_connection() (a clean close that
  /// still sends what was written). rejection() holds `reason` when this is called.
  virtual void input_rejected(const Reason& reason);

  /// Writes `payload` as one netstring, in one write.
  void send_string(std::string_view payload);

  /// The largest payload accepted, in bytes.
  std::size_t max_length() const noexcept { return max_length_; }
  /// Why the input was rejected, or nothing.
  const std::optional<Reason>& rejection() const noexcept { return rejection_; }

  /// Parses `data`. Transports call it.
  void data_received(std::string_view data) override;

 private:
  enum class State : std::uint8_t { length, payload, comma };
  void reject(error kind, std::string detail);
  bool stopped() const;

  std::size_t max_length_;
  State state_ = State::length;
  std::size_t digits_ = 0;
  std::size_t length_ = 0;
  std::string payload_;  // a string split across reads
  std::optional<Reason> rejection_;
};

}  // namespace torsion
