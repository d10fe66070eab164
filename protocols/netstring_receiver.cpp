#include "protocols/netstring_receiver.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

namespace torsion {

NetstringReceiver::NetstringReceiver(std::size_t max_length) : max_length_(max_length) {
  if (max_length > kMaxMaxLength)
    throw std::invalid_argument("NetstringReceiver: max_length " + std::to_string(max_length) +
                                " exceeds " + std::to_string(kMaxMaxLength));
}

void NetstringReceiver::input_rejected(const Reason& reason) {
  (void)reason;
  if (has_transport()) transport().lose_connection();
}

void NetstringReceiver::send_string(std::string_view payload) {
  std::array<char, 24> digits{};
  const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), payload.size()).ptr;
  const std::array<std::string_view, 4> parts{
      std::string_view(digits.data(), static_cast<std::size_t>(end - digits.data())), ":", payload,
      ","};
  transport().write_sequence(parts);
}

void NetstringReceiver::reject(error kind, std::string detail) {
  payload_.clear();
  payload_.shrink_to_fit();
  rejection_ = Reason(kind, {}, std::move(detail));
  input_rejected(*rejection_);
}

bool NetstringReceiver::stopped() const {
  return rejection_.has_value() || !has_transport() || !transport().connected();
}

void NetstringReceiver::data_received(std::string_view data) {
  std::size_t i = 0;
  while (i < data.size() && !stopped()) {
    switch (state_) {
      case State::length: {
        const char c = data[i];
        if (c == ':') {
          if (digits_ == 0) return reject(error::malformed_input, "netstring: empty length");
          ++i;
          state_ = length_ == 0 ? State::comma : State::payload;
        } else if (c >= '0' && c <= '9') {
          if (digits_ == 1 && length_ == 0)
            return reject(error::malformed_input, "netstring: length with a leading zero");
          length_ = length_ * 10 + static_cast<std::size_t>(c - '0');
          ++digits_;
          ++i;
          if (length_ > max_length_)
            return reject(error::length_limit_exceeded,
                          "netstring: length over " + std::to_string(max_length_));
        } else {
          return reject(error::malformed_input, "netstring: non-digit in length");
        }
        break;
      }
      case State::payload: {
        const std::size_t avail = data.size() - i;
        if (payload_.empty() && avail > length_) {  // whole string and its ',' in this read
          if (data[i + length_] != ',')
            return reject(error::malformed_input, "netstring: missing ','");
          const std::string_view payload = data.substr(i, length_);
          i += length_ + 1;
          state_ = State::length;
          digits_ = length_ = 0;
          string_received(payload);
          break;
        }
        if (payload_.empty()) payload_.reserve(length_);  // length_ <= max_length_
        const std::size_t take = std::min(avail, length_ - payload_.size());
        payload_.append(data.substr(i, take));
        i += take;
        if (payload_.size() == length_) state_ = State::comma;
        break;
      }
      case State::comma: {
        if (data[i] != ',') return reject(error::malformed_input, "netstring: missing ','");
        ++i;
        std::string payload = std::move(payload_);
        payload_.clear();
        state_ = State::length;
        digits_ = length_ = 0;
        string_received(payload);
        if (payload_.empty()) {  // give the capacity back for the next long string
          payload.clear();
          payload_ = std::move(payload);
        }
        break;
      }
    }
  }
}

}  // namespace torsion
