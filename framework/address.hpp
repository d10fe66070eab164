#pragma once
/// \file
/// Network addresses as protocols see them.

#include <cstdint>
#include <string>

namespace torsion {

/// A transport's local or remote address: an IP host and port, a Unix socket path, or
/// none (an in-memory transport, or a socket whose address could not be read).
class Address {
 public:
  /// What kind of address this is.
  enum class Family { none, ipv4, ipv6, unix_socket };

  /// An address of family none.
  Address() = default;

  /// An IP address; the family is ipv6 when `host` contains ':', else ipv4. The host is
  /// kept as given (numeric hosts are what transports produce).
  static Address ip(std::string host, std::uint16_t port);
  /// A Unix socket path (an abstract-namespace name starts with '@').
  static Address unix_socket(std::string path);

  /// ipv4, ipv6 or unix_socket (none for a default-constructed Address).
  Family family() const noexcept { return family_; }
  /// The host for IP addresses, the path for Unix sockets, empty for none.
  const std::string& host() const noexcept { return host_; }
  /// The port for IP addresses, 0 otherwise.
  std::uint16_t port() const noexcept { return port_; }

  /// "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock" or "-" for none.
  std::string to_string() const;

  friend bool operator==(const Address&, const Address&) = default;

 private:
  Family family_ = Family::none;
  std::string host_;
  std::uint16_t port_ = 0;
};

}  // namespace torsion
