#include "transports/tcp_pool.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;

namespace {

class Echo final : public Protocol {
 public:
  // Notes the thread data arrives on in `*data_thread`, unless it is null.
  explicit Echo(std::thread::id* data_thread) : data_thread_(data_thread) {}
  void data_received(std::string_view data) override {
    if (data_thread_) *data_thread_ = std::this_thread::get_id();
    transport().write(data);
  }

 private:
  std::thread::id* data_thread_;
};

// Serves one reactor: counts its connections and notes the threads they ran on. Only its
// own reactor's thread touches it while the pool runs.
class ThreadNotingFactory final : public Factory {
 public:
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    threads.insert(std::this_thread::get_id());
    return std::make_unique<Echo>(&data_threads.emplace_back());
  }
  std::set<std::thread::id> threads;
  std::deque<std::thread::id> data_threads;
};

void join_within(ReactorPool& pool) {
  std::promise<void> joined;
  auto done = joined.get_future();
  std::thread joiner([&] {
    pool.join();
    joined.set_value();
  });
  if (done.wait_for(std::chrono::duration<double>(test::kDeadline)) != std::future_status::ready) {
    std::fprintf(stderr, "ReactorPool::join did not return in time\n");
    std::abort();
  }
  joiner.join();
}

// Connects `count` clients to `port`, each with its own factory; client i sends "hello
// from client i" and closes once the echo is back.
void echo_clients(Reactor& reactor, std::uint16_t port, std::deque<RecordingClientFactory>& clients,
                  std::vector<std::shared_ptr<Connector>>& connectors, int count) {
  for (int i = 0; i < count; ++i) {
    auto& client = clients.emplace_back();
    const std::string message = "hello from client " + std::to_string(i);
    client.setup = [message](Record& r) {
      r.on_made = [message](Record& rr) { rr.transport->write(message); };
      r.on_data = [message](Record& rr, std::string_view) {
        if (rr.received.size() >= message.size()) rr.transport->lose_connection();
      };
    };
    connectors.push_back(connect_tcp(reactor, "127.0.0.1", port, client));
  }
  wait_for(reactor, [&] {
    for (auto& c : clients)
      if (c.lost + c.failed == 0) return false;
    return true;
  }, "every client to get its echo and close");
}

// Each client got exactly its own message back and closed cleanly.
void check_echoes(const std::deque<RecordingClientFactory>& clients) {
  for (std::size_t i = 0; i < clients.size(); ++i) {
    CHECK(clients[i].failed == 0);
    REQUIRE(clients[i].records.size() == 1);
    CHECK(clients[i].records[0].received == "hello from client " + std::to_string(i));
    REQUIRE(clients[i].records[0].reason.has_value());
    CHECK(clients[i].records[0].reason->clean());
  }
}

}  // namespace

TEST_CASE("pool_listen_spreads_connections_over_reactors") {
  constexpr int kClients = 40;
  ReactorPool pool(2);
  std::vector<ThreadNotingFactory> factories(2);
  auto ports = listen_tcp_pool(
      pool, 0, [&](std::size_t i) -> Factory& { return factories[i]; }, loopback());
  REQUIRE(ports.size() == 2);
  CHECK(ports[0]->port() != 0);
  CHECK(ports[1]->port() == ports[0]->port());
  pool.start();

  Reactor reactor;
  std::deque<RecordingClientFactory> clients;
  std::vector<std::shared_ptr<Connector>> connectors;
  echo_clients(reactor, ports[0]->port(), clients, connectors, kClients);
  pool.stop();
  join_within(pool);
  check_echoes(clients);
  // The kernel hashes each connection to one socket: with 40 connections, both reactors
  // get some (all on one has odds of 2^-39).
  const auto n0 = factories[0].data_threads.size(), n1 = factories[1].data_threads.size();
  CHECK(n0 + n1 == kClients);
  CHECK(n0 > 0);
  CHECK(n1 > 0);
  // Every connection lives on its reactor's thread, and the two threads differ.
  REQUIRE(factories[0].threads.size() == 1);
  REQUIRE(factories[1].threads.size() == 1);
  const auto t0 = *factories[0].threads.begin(), t1 = *factories[1].threads.begin();
  CHECK(t0 != t1);
  CHECK(t0 != std::this_thread::get_id());
  for (auto id : factories[0].data_threads) CHECK(id == t0);
  for (auto id : factories[1].data_threads) CHECK(id == t1);
}

TEST_CASE("pool_listen_with_a_shared_factory") {
  ReactorPool pool(2);
  auto factory = make_factory<Echo>(nullptr);  // stateless: safe from both threads
  auto ports = listen_tcp_pool(pool, 0, factory, loopback());
  REQUIRE(ports.size() == 2);
  CHECK(ports[0]->listening());
  CHECK(ports[1]->listening());
  pool.start();
  Reactor reactor;
  std::deque<RecordingClientFactory> clients;
  std::vector<std::shared_ptr<Connector>> connectors;
  echo_clients(reactor, ports[0]->port(), clients, connectors, 8);
  pool.stop();
  join_within(pool);
  check_echoes(clients);
}

TEST_CASE("pool_listen_after_start_is_a_logic_error") {
  ReactorPool pool(1);
  ThreadNotingFactory factory;
  pool.start();
  CHECK_THROWS_WITH_AS(listen_tcp_pool(pool, 0, factory, loopback()),
                       "listen_tcp_pool: call it before ReactorPool::start()", std::logic_error);
  pool.stop();
  join_within(pool);
}

TEST_CASE("pool_listen_on_a_port_taken_without_reuse_port_fails_cleanly") {
  Reactor reactor;
  ThreadNotingFactory factory;
  auto taken = listen_tcp(reactor, 0, factory, loopback());  // no SO_REUSEPORT
  ReactorPool pool(2);
  CHECK_THROWS_AS(listen_tcp_pool(pool, taken->port(), factory, loopback()), std::system_error);
  CHECK(factory.threads.empty());  // no connection, no callback
  CHECK(pool.reactor(0).connection_count() == 0);
  CHECK_THROWS_AS(listen_tcp_pool(pool, 70000, factory, loopback()), std::invalid_argument);
}
