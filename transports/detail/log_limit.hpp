#pragma once
// Private: at most one log line per interval for an event that can come in floods (a port
// given garbage instead of TLS handshakes, a process out of descriptors), with how many
// were left out since the last line, so that a flood costs neither the disk nor the loop.
//
//   admit(t0) -> ""                        (logged)
//   admit(t0 + 0.1) ... admit(t0 + 0.9)    -> nullopt, counted
//   admit(t0 + 1.2) -> " (9 more like it in the last 1.2 s)"   (logged)

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace torsion::detail {

class LogLimiter {
 public:
  explicit LogLimiter(double interval = 1.0) : interval_(interval) {}

  // An event at `now` (seconds, any monotonic origin): the suffix to add to its line if
  // it is to be logged, else nothing (it is counted for the next line).
  std::optional<std::string> admit(double now) {
    if (logged_once_ && now - last_ < interval_) {
      ++left_out_;
      return std::nullopt;
    }
    std::string suffix;
    if (left_out_ > 0) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " (%llu more like it in the last %.1f s)",
                    static_cast<unsigned long long>(left_out_), now - last_);
      suffix = buf;
    }
    logged_once_ = true;
    last_ = now;
    left_out_ = 0;
    return suffix;
  }

 private:
  double interval_;
  double last_ = 0;
  std::uint64_t left_out_ = 0;
  bool logged_once_ = false;
};

}  // namespace torsion::detail
