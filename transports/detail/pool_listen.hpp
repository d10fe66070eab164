#pragma once
// Private: the loop behind listen_tcp_pool and listen_ssl_pool (defined in tcp_pool.cpp).

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "framework/listening_port.hpp"
#include "framework/reactor_pool.hpp"

namespace torsion::detail {

// Calls `listen(reactor i, port, i)` for every reactor of `pool`, each with SO_REUSEPORT;
// with port 0 the first picks the port and the others join it. If one throws, the ports
// opened so far are closed and the exception goes on. Throws std::logic_error (naming
// `what`) if the pool is started.
std::vector<std::shared_ptr<ListeningPort>> listen_on_pool(
    ReactorPool& pool, int port, const char* what,
    const std::function<std::shared_ptr<ListeningPort>(Reactor&, int, std::size_t)>& listen);

}  // namespace torsion::detail
