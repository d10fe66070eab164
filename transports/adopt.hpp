#pragma once
/// \file
/// Adopting sockets made elsewhere: a listening socket inherited from systemd, a
/// supervisor or an older process of the same server, or a connection accepted by other
/// code (Twisted's adoptStreamPort and adoptStreamConnection, asyncio's `sock=`).
///
/// The socket's family is read from the socket itself: TCP over IPv4 or IPv6, or a Unix
/// stream socket. Adopting takes the descriptor over: from a successful call on, torsion
/// closes it (when the port stops listening or the connection closes, or when the reactor
/// is destroyed). When a call throws, the descriptor is left open and stays the caller's.
/// To keep using a descriptor yourself, adopt a dup() of it.

#include <memory>
#include <system_error>

#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// Listens on `fd`, a stream socket that is already bound and listening. Connections are
/// served exactly as listen_tcp's or listen_unix's (TCP_NODELAY on for TCP, the same
/// back-off when out of descriptors); get_host() is the socket's bound address.
/// stop_listening() closes the descriptor but never removes a Unix socket file: the file
/// belongs to whoever bound it. Reports in `ec`, and returns null, when `fd` is not a
/// socket (not_a_socket), not a stream socket or not TCP or Unix
/// (address_family_not_supported / wrong_protocol_type), or not listening
/// (invalid_argument). No callback runs then.
std::shared_ptr<ListeningPort> adopt_listening_socket(Reactor& reactor, int fd, Factory& factory,
                                                      std::error_code& ec);

/// As above, throwing std::system_error (naming the descriptor) instead.
std::shared_ptr<ListeningPort> adopt_listening_socket(Reactor& reactor, int fd, Factory& factory);

/// Serves `fd`, a connected stream socket (TCP or Unix), with a protocol from
/// `factory.build_protocol(peer)`. The protocol is built and connection_made runs from the
/// loop, never inside this call; a null protocol (or an exception from build_protocol,
/// which is logged) closes the descriptor. The connection counts as a live connection of
/// the reactor like an accepted one. Reports in `ec` when `fd` is not a connected TCP or
/// Unix stream socket (not_a_socket, wrong_protocol_type, address_family_not_supported,
/// not_connected); nothing is taken over then.
void adopt_connection(Reactor& reactor, int fd, Factory& factory, std::error_code& ec);

/// As above, throwing std::system_error instead.
void adopt_connection(Reactor& reactor, int fd, Factory& factory);

}  // namespace torsion
