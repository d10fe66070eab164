#pragma once
/// \file
/// TCP: listen_tcp and connect_tcp.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "framework/address.hpp"
#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/socket_options.hpp"

namespace torsion {

/// Options for listen_tcp.
struct TcpListenOptions {
  /// Address to bind: "" for every IPv4 interface (as Twisted), "::" for every IPv6 (and
  /// usually IPv4) interface, or a numeric address such as "127.0.0.1" or "::1".
  std::string interface;
  /// Length of the kernel's queue of connections not yet accepted.
  int backlog = 511;
  /// Set SO_REUSEPORT, so that several reactors can each listen on the same port.
  bool reuse_port = false;
  /// Turn Nagle's algorithm off (TCP_NODELAY) on every accepted connection, as asyncio
  /// does (Twisted leaves it on): small writes go out at once instead of waiting for the
  /// previous segment's ACK. torsion already coalesces queued writes into one send, so
  /// Nagle's batching buys little. Change it per connection with set_tcp_no_delay().
  bool no_delay = true;
};

/// Options for connect_tcp.
struct TcpConnectOptions {
  /// Seconds for name resolution plus connecting before giving up with
  /// error::timed_out; 0 for no limit (the OS's own limit still applies).
  double timeout = 30;
  /// Happy Eyeballs (RFC 8305): when a name has several addresses, seconds to wait for one
  /// address to connect before the next one is tried beside it (default 0.25, the RFC's
  /// Connection Attempt Delay). The next one starts at once when the previous one fails.
  double attempt_delay = 0.25;
  /// Seconds one address may take to connect before it is given up (as timed_out) and the
  /// next one is tried; 0 for no per-address limit (`timeout` still holds).
  double attempt_timeout = 0;
  /// Where the time-outs and attempt_delay are timed; null (default) for the reactor. A
  /// testing::ManualClock here lets a test step through the attempts.
  Scheduler* clock = nullptr;
  /// Replaces the system resolver for names (not for numeric hosts): returns a name's
  /// numeric addresses, none (or a throw) for lookup_failed. A fixed host table, or tests.
  std::function<std::vector<std::string>(const std::string& host)> resolver;
  /// TCP_NODELAY on the connection, as TcpListenOptions::no_delay (default on).
  bool no_delay = true;
  /// The local address to connect from (Twisted's bindAddress), e.g.
  /// Address::ip("192.0.2.10", 0): a numeric IPv4 or IPv6 host, and a port (0: the kernel
  /// picks one). Only the destination's addresses of its family are tried. A failed bind
  /// (address_in_use, an address this machine does not have) fails that address as a
  /// refused connect would; the attempt fails with it when no address is left. Unset (the
  /// default): no bind, the kernel chooses.
  // An optional, so that a default TcpConnectOptions holds no std::string: g++ 12 mishandles
  // the default-argument temporary of connect_stream(..., options = {}) in a co_await
  // (a plain Address member crashed stream_test with free(): invalid pointer).
  std::optional<Address> bind;
  /// Connect only to addresses of this family (ipv4 or ipv6), as the `tcp6:` endpoint does
  /// with ipv6; a host with none fails with lookup_failed. Default (none): any family.
  Address::Family family = Address::Family::none;
};

/// Listens on `port` (0: the kernel picks one; ask the returned port which). Each
/// accepted connection gets a protocol from `factory` (null refuses it; an exception from
/// build_protocol is logged and refuses it too) and a TCP transport with TCP_NODELAY on
/// (see TcpListenOptions::no_delay). The factory must outlive the port and its connections.
/// When the process runs out of descriptors (EMFILE, ENFILE) or memory, accepting pauses
/// for 0.1 s and then resumes; the listening socket is kept and the loop does not spin.
/// Throws std::invalid_argument for a port outside 0..65535 or a non-numeric interface,
/// std::system_error if the socket cannot be bound (the code says why). No callback runs
/// if it throws.
std::shared_ptr<ListeningPort> listen_tcp(Reactor& reactor, int port, Factory& factory,
                                          const TcpListenOptions& options = {});

/// As above, reporting a bind failure in `ec` (and returning null) instead of throwing.
std::shared_ptr<ListeningPort> listen_tcp(Reactor& reactor, int port, Factory& factory,
                                          const TcpListenOptions& options,
                                          std::error_code& ec);

/// Connects to `host` (a name, resolved without blocking the reactor, or a numeric
/// address, IPv4 or IPv6) on `port`. A name with several addresses is connected by Happy
/// Eyeballs (RFC 8305): IPv6 addresses first, the families alternating; each address gets
/// attempt_delay seconds before the next is tried beside it (at once if it fails); the first
/// to connect wins and the others are closed. If all fail, the last failure is reported
/// (time-outs included). From the loop:
/// factory.started_connecting, then either a protocol's connection_made (and later
/// connection_lost, then factory.client_connection_lost) or
/// factory.client_connection_failed with the last failure (connection_refused,
/// timed_out, lookup_failed, refused_by_factory, cancelled, callback_threw when
/// started_connecting or build_protocol threw...). The returned Connector can
/// disconnect() and connect() again; keeping it is optional (the attempt, the connection
/// and a ReconnectingClientFactory's pending retry keep it alive). Exceptions from
/// client_connection_failed/lost are logged. Throws
/// std::invalid_argument for a port outside 1..65535, a negative (or NaN) time, a bind
/// address that is not a numeric IP address, or a family (unix_socket, or one that
/// differs from the bind address's) that cannot be connected to.
std::shared_ptr<Connector> connect_tcp(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory,
                                       const TcpConnectOptions& options = {});

}  // namespace torsion
