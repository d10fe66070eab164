#pragma once
/// \file
/// listen_tcp_pool: one TCP port served by every reactor of a ReactorPool.

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor_pool.hpp"
#include "transports/tcp.hpp"

namespace torsion {

/// Listens on `port` once per reactor of `pool`, each reactor with its own SO_REUSEPORT
/// socket bound to the same address, so that the kernel spreads incoming connections
/// across the reactors (by a hash of the peer's address and port) and each connection
/// lives on one reactor's thread for good. With port 0 the first socket takes the port
/// the kernel picks and the others join it. Returns the ports, index i on reactor i.
///
/// Call it before pool.start(): it sets up each reactor from the calling thread. Throws
/// std::logic_error if the pool is started, std::invalid_argument for a bad port or
/// interface, std::system_error if a socket cannot be bound (the ports bound so far are
/// closed again; no callback runs). A ListeningPort must be used (stop_listening) only
/// from its reactor's thread, or after the pool is joined.
///
/// `factory` is shared: its build_protocol is called from every reactor's thread at once,
/// so it must be thread-safe (make_factory<P>() is, when P's constructor is).
std::vector<std::shared_ptr<ListeningPort>> listen_tcp_pool(ReactorPool& pool, int port,
                                                            Factory& factory,
                                                            TcpListenOptions options = {});

/// As above with a factory per reactor: `factory_for(i)` is called once per reactor, on
/// the calling thread, and the factory it returns serves reactor i only (so it needs no
/// locking). Each factory must outlive its port and connections.
std::vector<std::shared_ptr<ListeningPort>> listen_tcp_pool(
    ReactorPool& pool, int port, const std::function<Factory&(std::size_t)>& factory_for,
    TcpListenOptions options = {});

}  // namespace torsion
