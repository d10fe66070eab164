#include "transports/tcp_pool.hpp"

#include <stdexcept>

namespace torsion {

std::vector<std::shared_ptr<ListeningPort>> listen_tcp_pool(
    ReactorPool& pool, int port, const std::function<Factory&(std::size_t)>& factory_for,
    TcpListenOptions options) {
  if (pool.started())
    throw std::logic_error("listen_tcp_pool: call it before ReactorPool::start()");
  options.reuse_port = true;
  std::vector<std::shared_ptr<ListeningPort>> ports;
  ports.reserve(pool.size());
  try {
    for (std::size_t i = 0; i < pool.size(); ++i) {
      ports.push_back(listen_tcp(pool.reactor(i), port, factory_for(i), options));
      port = ports.front()->port();  // port 0: the others join the one the kernel picked
    }
  } catch (...) {
    for (auto& p : ports) p->stop_listening();
    throw;
  }
  return ports;
}

std::vector<std::shared_ptr<ListeningPort>> listen_tcp_pool(ReactorPool& pool, int port,
                                                            Factory& factory,
                                                            TcpListenOptions options) {
  return listen_tcp_pool(
      pool, port, [&factory](std::size_t) -> Factory& { return factory; }, std::move(options));
}

}  // namespace torsion
