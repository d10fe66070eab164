#include <atomic>
#include <string>

#include "docs/snippets/snippets.hpp"
#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor_pool.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/tcp.hpp"
#include "transports/tcp_pool.hpp"
#include "transports/connect_stream.hpp"

namespace docs {

namespace {

// [snippet:pool-protocol]
// An ordinary protocol: each connection lives on one reactor's thread for good, so
// nothing in it needs a lock.
class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

// One factory per reactor, so that its counter needs no lock either.
class CountingEchoFactory : public torsion::Factory {
 public:
  std::unique_ptr<torsion::Protocol> build_protocol(const torsion::Address&) override {
    ++built;
    return std::make_unique<Echo>();
  }
  int built = 0;
};
// [end]

torsion::Task<void> ping(torsion::Reactor& reactor, int port, int& answered) {
  torsion::Stream s = co_await torsion::connect_stream(reactor, "127.0.0.1", port);
  s.write("ping");
  if (co_await s.read_exactly(4) == "ping") ++answered;
}

}  // namespace

std::vector<int> connections_per_reactor(int clients) {
  // [snippet:reactor-pool]
  torsion::ReactorPool pool(2);  // ReactorPool::default_size(): one per core
  std::vector<CountingEchoFactory> factories(pool.size());
  torsion::TcpListenOptions options;
  options.interface = "127.0.0.1";
  auto ports = torsion::listen_tcp_pool(
      pool, 0, [&](std::size_t i) -> torsion::Factory& { return factories[i]; }, options);
  pool.start();  // one thread per reactor, each in Reactor::run()
  // [end]

  // Clients on this thread's own reactor.
  torsion::Reactor client;
  int answered = 0;
  std::vector<torsion::Task<void>> pings;
  for (int i = 0; i < clients; ++i) pings.push_back(ping(client, ports.front()->port(), answered));
  client.run_until([&] { return answered == clients; }, 10);

  // [snippet:pool-stop]
  pool.stop();  // from any thread: each reactor stops after its current callback
  pool.join();  // then the factories may be read: their threads are gone
  // [end]
  std::vector<int> counts;
  for (auto& f : factories) counts.push_back(f.built);
  if (answered != clients) counts.push_back(-1);
  return counts;
}

}  // namespace docs
