#include "transports/tcp_pool.hpp"

#include <stdexcept>
#include <string>

#include "transports/detail/pool_listen.hpp"

namespace torsion {

namespace detail {

std::vector<std::shared_ptr<ListeningPort>> listen_on_pool(
    ReactorPool& pool, int port, const char* what,
    const std::function<std::shared_ptr<ListeningPort>(Reactor&, int, std::size_t)>& listen) {
  if (pool.started())
    throw std::logic_error(std::string(what) + ": call it before ReactorPool::start()");
  std::vector<std::shared_ptr<ListeningPort>> ports;
  ports.reserve(pool.size());
  try {
    for (std::size_t i = 0; i < pool.size(); ++i) {
      ports.push_back(listen(pool.reactor(i), port, i));
      port = ports.front()->port();  // port 0: the others join the one the kernel picked
    }
  } catch (...) {
    for (auto& p : ports) p->stop_listening();
    throw;
  }
  return ports;
}

}  // namespace detail

std::vector<std::shared_ptr<ListeningPort>> listen_tcp_pool(
    ReactorPool& pool, int port, const std::function<Factory&(std::size_t)>& factory_for,
    TcpListenOptions options) {
  options.reuse_port = true;
  return detail::listen_on_pool(pool, port, "listen_tcp_pool",
                                [&](Reactor& reactor, int p, std::size_t i) {
                                  return listen_tcp(reactor, p, factory_for(i), options);
                                });
}

std::vector<std::shared_ptr<ListeningPort>> listen_tcp_pool(ReactorPool& pool, int port,
                                                            Factory& factory,
                                                            TcpListenOptions options) {
  return listen_tcp_pool(
      pool, port, [&factory](std::size_t) -> Factory& { return factory; }, std::move(options));
}

}  // namespace torsion
