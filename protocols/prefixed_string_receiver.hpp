#pragma once
/// \file
/// PrefixedStringReceiver<N>: strings framed by an N-byte big-endian length, and its
/// three instances Int8StringReceiver, Int16StringReceiver, Int32StringReceiver.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "framework/protocol.hpp"
#include "framework/reason.hpp"

namespace torsion {

/// Receives and sends strings each preceded by its length as a `PrefixBytes`-byte
/// unsigned big-endian integer (Twisted's IntNStringReceiver).
///
/// A length over max_length() is never read: length_limit_exceeded(length) is called
/// once, as soon as the prefix is complete, and every later byte is ignored. Memory held
/// for a pending string is at most PrefixBytes + max_length() bytes (plus, only while
/// paused, the rest of the current read). The outcome does not depend on how the input
/// is split into reads; after the transport is closed nothing more is delivered.
///
/// Pausing: pause_producing() on the receiver pauses the transport and holds back
/// strings already received; resume_producing() delivers them before it returns (unless
/// called from inside string_received). Pausing only the transport stops further reads.
template <std::size_t PrefixBytes>
class PrefixedStringReceiver : public Protocol {
  static_assert(PrefixBytes >= 1 && PrefixBytes <= 4, "prefix of 1 to 4 bytes");

 public:
  /// The largest length the prefix can express.
  static constexpr std::size_t kPrefixMax = (std::uint64_t{1} << (8 * PrefixBytes)) - 1;
  /// Twisted's default limit (or the prefix's own maximum if lower).
  static constexpr std::size_t kDefaultMaxLength = std::min<std::size_t>(99999, kPrefixMax);

  /// `max_length` is the largest payload accepted (capped at kPrefixMax).
  explicit PrefixedStringReceiver(std::size_t max_length = kDefaultMaxLength)
      : max_length_(std::min(max_length, kPrefixMax)) {}

  /// One complete string; the view is valid during the call.
  virtual void string_received(std::string_view payload) = 0;

  /// The peer announced a string of `length` > max_length() bytes. The default closes
  /// the connection with lose_connection(). rejection() holds a Reason of kind
  /// error::length_limit_exceeded when this is called.
  virtual void length_limit_exceeded(std::size_t length) {
    (void)length;
    if (has_transport()) transport().lose_connection();
  }

  /// Writes the prefix and `payload` in one write. Throws std::length_error if the
  /// payload is longer than the prefix can express (kPrefixMax), naming the size.
  void send_string(std::string_view payload) {
    if (payload.size() > kPrefixMax)
      throw std::length_error("send_string: " + std::to_string(payload.size()) +
                              " bytes do not fit a " + std::to_string(PrefixBytes) +
                              "-byte length prefix");
    std::array<char, PrefixBytes> prefix{};
    std::size_t n = payload.size();
    for (std::size_t i = PrefixBytes; i-- > 0; n >>= 8)
      prefix[i] = static_cast<char>(static_cast<unsigned char>(n & 0xff));
    const std::array<std::string_view, 2> parts{std::string_view(prefix.data(), PrefixBytes),
                                                payload};
    transport().write_sequence(parts);
  }

  /// Pauses the transport and the delivery of strings already received.
  void pause_producing() {
    paused_ = true;
    if (has_transport()) transport().pause_producing();
  }
  /// Resumes the transport and delivers what was held back.
  void resume_producing() {
    if (!paused_) return;
    paused_ = false;
    if (has_transport()) transport().resume_producing();
    if (!processing_ && !held_.empty()) {
      std::string held = std::exchange(held_, std::string());
      data_received(held);
    }
  }
  /// True between pause_producing and resume_producing.
  bool paused() const noexcept { return paused_; }

  /// The largest payload accepted, in bytes.
  std::size_t max_length() const noexcept { return max_length_; }
  /// Changes the limit (capped at kPrefixMax); applies to prefixes not yet read.
  void set_max_length(std::size_t max_length) { max_length_ = std::min(max_length, kPrefixMax); }
  /// Why the input was rejected, or nothing.
  const std::optional<Reason>& rejection() const noexcept { return rejection_; }

  /// Parses `data`. Transports call it.
  void data_received(std::string_view data) override {
    if (rejection_) return;
    if (processing_)
      throw std::logic_error("PrefixedStringReceiver::data_received called from its own callback");
    if (paused_) {
      held_.append(data);
      return;
    }
    processing_ = true;
    struct Done {
      bool& flag;
      ~Done() { flag = false; }
    } done{processing_};

    std::size_t i = 0;
    if (!partial_.empty()) {  // complete the frame begun in an earlier read
      const std::size_t need_prefix = PrefixBytes - std::min(PrefixBytes, partial_.size());
      const std::size_t p = std::min(need_prefix, data.size());
      partial_.append(data.substr(0, p));
      i = p;
      if (partial_.size() < PrefixBytes) return;
      const std::size_t length = decode(partial_.data());
      if (length > max_length_) return reject(length);
      const std::size_t take = std::min(PrefixBytes + length - partial_.size(), data.size() - i);
      partial_.append(data.substr(i, take));
      i += take;
      if (partial_.size() < PrefixBytes + length) return;
      std::string frame = std::exchange(partial_, std::string());
      string_received(std::string_view(frame).substr(PrefixBytes));
      if (partial_.empty()) {  // keep the capacity for the next long frame
        frame.clear();
        partial_ = std::move(frame);
      }
    }
    while (!stopped() && data.size() - i >= PrefixBytes) {
      const std::size_t length = decode(data.data() + i);
      if (length > max_length_) return reject(length);
      if (data.size() - i - PrefixBytes < length) break;
      const std::string_view payload = data.substr(i + PrefixBytes, length);
      i += PrefixBytes + length;
      string_received(payload);
    }
    if (i == data.size() || !has_transport() || !transport().connected() || rejection_) return;
    if (paused_)
      held_.insert(0, data.substr(i));  // delivered by resume_producing, ahead of later reads
    else
      partial_.assign(data.substr(i));  // less than one frame: bounded by the limit
  }

 private:
  bool stopped() const {
    return paused_ || rejection_.has_value() || !has_transport() || !transport().connected();
  }

  static std::size_t decode(const char* p) {
    std::size_t n = 0;
    for (std::size_t k = 0; k < PrefixBytes; ++k) n = (n << 8) | static_cast<unsigned char>(p[k]);
    return n;
  }

  void reject(std::size_t length) {
    partial_.clear();
    held_.clear();
    rejection_ = Reason(
        error::length_limit_exceeded, {},
        "announced length " + std::to_string(length) + " exceeds " + std::to_string(max_length_));
    length_limit_exceeded(length);
  }

  std::size_t max_length_;
  std::string partial_;  // an incomplete frame (prefix included)
  std::string held_;     // bytes received while paused, not parsed yet
  bool paused_ = false;
  bool processing_ = false;
  std::optional<Reason> rejection_;
};

/// Strings with a 1-byte length prefix (at most 255 bytes).
using Int8StringReceiver = PrefixedStringReceiver<1>;
/// Strings with a 2-byte big-endian length prefix.
using Int16StringReceiver = PrefixedStringReceiver<2>;
/// Strings with a 4-byte big-endian length prefix.
using Int32StringReceiver = PrefixedStringReceiver<4>;

}  // namespace torsion
