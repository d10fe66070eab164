#pragma once
/// \file
/// Unix stream sockets: listen_unix, connect_unix and the peer's credentials.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// Options for listen_unix.
struct UnixListenOptions {
  /// Length of the kernel's queue of connections not yet accepted.
  int backlog = 511;
  /// Permission bits for the socket file (e.g. 0600); -1 leaves what the umask gives.
  /// Ignored for abstract names.
  int mode = -1;
  /// When the path exists and nothing accepts connections on it (a stale file left by
  /// a crashed server), remove it and bind again. A path that is not a socket, or a
  /// socket somebody listens on, is never removed: binding fails with address_in_use.
  bool remove_stale = true;
};

/// Options for connect_unix.
struct UnixConnectOptions {
  /// Seconds before giving up with error::timed_out; 0 for no limit.
  double timeout = 30;
};

/// The credentials of the process at the other end of a Unix socket, as the kernel
/// recorded them when the connection was made (SO_PEERCRED).
struct PeerCredentials {
  /// The peer's process id.
  std::int32_t pid = 0;
  /// Its effective user id.
  std::uint32_t uid = 0;
  /// Its effective group id.
  std::uint32_t gid = 0;
};

/// Listens on the Unix socket `path`; a name starting with '@' is in Linux's abstract
/// namespace (no file). Each accepted connection gets a protocol from `factory` (null
/// refuses it; so does an exception, which is logged) and a transport whose
/// get_peer()/get_host() are unix_socket addresses. Out of descriptors, accepting pauses
/// as listen_tcp's does.
/// The socket file is removed by stop_listening (and when the port is destroyed), but
/// only if it is still the file this port created. Throws std::invalid_argument for an
/// empty or too long path (the limit is 107 bytes), std::system_error if binding fails.
/// No callback runs if it throws.
std::shared_ptr<ListeningPort> listen_unix(Reactor& reactor, const std::string& path,
                                           Factory& factory,
                                           const UnixListenOptions& options = {});

/// As above, reporting a bind failure in `ec` (and returning null) instead of throwing.
std::shared_ptr<ListeningPort> listen_unix(Reactor& reactor, const std::string& path,
                                           Factory& factory, const UnixListenOptions& options,
                                           std::error_code& ec);

/// Connects to the Unix socket `path` ('@' for the abstract namespace). From the loop:
/// factory.started_connecting, then a protocol's connection_made (later connection_lost,
/// then client_connection_lost) or client_connection_failed (connection_refused when
/// nothing listens, connect_failed with ENOENT when there is no such file, timed_out,
/// refused_by_factory, cancelled, callback_threw when started_connecting or build_protocol
/// threw). The Connector behaves as connect_tcp's. Throws std::invalid_argument for a bad
/// path or a negative timeout.
std::shared_ptr<Connector> connect_unix(Reactor& reactor, const std::string& path,
                                        ClientFactory& factory,
                                        const UnixConnectOptions& options = {});

/// The peer's credentials when `transport` is a Unix socket transport, else nullopt
/// (also after the connection closed).
[[nodiscard]] std::optional<PeerCredentials> peer_credentials(const Transport& transport);

}  // namespace torsion
