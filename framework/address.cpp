#include "framework/address.hpp"

namespace torsion {

Address Address::ip(std::string host, std::uint16_t port) {
  Address a;
  a.family_ = host.find(':') != std::string::npos ? Family::ipv6 : Family::ipv4;
  a.host_ = std::move(host);
  a.port_ = port;
  return a;
}

Address Address::unix_socket(std::string path) {
  Address a;
  a.family_ = Family::unix_socket;
  a.host_ = std::move(path);
  return a;
}

std::string Address::to_string() const {
  switch (family_) {
    case Family::ipv4: return host_ + ":" + std::to_string(port_);
    case Family::ipv6: return "[" + host_ + "]:" + std::to_string(port_);
    case Family::unix_socket: return "unix:" + host_;
    case Family::none: break;
  }
  return "-";
}

}  // namespace torsion
