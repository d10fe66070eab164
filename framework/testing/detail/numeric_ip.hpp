#pragma once
// Private: what the in-memory datagram transports need to know about an IP address.

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>

#include "framework/address.hpp"

namespace torsion::testing::detail {

// The address's bytes (4 or 16) when its host is a numeric address of its family.
struct NumericIp {
  std::array<std::uint8_t, 16> bytes{};
  bool v6 = false;

  bool multicast() const noexcept { return v6 ? bytes[0] == 0xff : (bytes[0] & 0xf0) == 0xe0; }
  bool unspecified() const noexcept {
    for (std::size_t i = 0; i < (v6 ? 16u : 4u); ++i)
      if (bytes[i] != 0) return false;
    return true;
  }
  bool broadcast() const noexcept {
    return !v6 && bytes[0] == 0xff && bytes[1] == 0xff && bytes[2] == 0xff && bytes[3] == 0xff;
  }
};

inline std::optional<NumericIp> parse_ip(const Address& a) {
  NumericIp ip;
  if (a.family() == Address::Family::ipv4) {
    if (::inet_pton(AF_INET, a.host().c_str(), ip.bytes.data()) != 1) return std::nullopt;
  } else if (a.family() == Address::Family::ipv6) {
    ip.v6 = true;
    if (::inet_pton(AF_INET6, a.host().c_str(), ip.bytes.data()) != 1) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return ip;
}

}  // namespace torsion::testing::detail
