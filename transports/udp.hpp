#pragma once
/// \file
/// UDP: listen_udp binds a DatagramTransport and attaches a DatagramProtocol to it.

#include <cstddef>
#include <memory>
#include <string>
#include <system_error>

#include "framework/datagram.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// Options for listen_udp.
struct UdpListenOptions {
  /// Address to bind: "" for every IPv4 interface, "::" for every IPv6 (and usually IPv4)
  /// interface, or a numeric address such as "127.0.0.1" or "::1".
  std::string interface;
  /// Set SO_REUSEADDR, so that several sockets can bind the same multicast port.
  bool reuse_address = false;
  /// Bytes of datagrams that may wait for the socket to become writable; a datagram that
  /// would exceed it is dropped and reported through error_received (no_buffer_space).
  std::size_t max_queued_bytes = 1024 * 1024;
};

/// Binds a UDP socket on `port` (0: the kernel picks one) and attaches `protocol`, whose
/// started_listening runs from the loop. Datagrams are delivered whole (the receive
/// buffer holds the largest possible UDP payload). The endpoint counts as a live
/// connection of the reactor (connection_count) until stopped_listening has run. The
/// protocol must outlive the endpoint. Throws std::invalid_argument for a port outside
/// 0..65535 or a non-numeric interface, std::system_error if the socket cannot be bound.
/// No callback runs if it throws.
std::shared_ptr<DatagramTransport> listen_udp(Reactor& reactor, int port,
                                              DatagramProtocol& protocol,
                                              const UdpListenOptions& options = {});

/// As above, reporting a bind failure in `ec` (and returning null) instead of throwing.
std::shared_ptr<DatagramTransport> listen_udp(Reactor& reactor, int port,
                                              DatagramProtocol& protocol,
                                              const UdpListenOptions& options,
                                              std::error_code& ec);

}  // namespace torsion
