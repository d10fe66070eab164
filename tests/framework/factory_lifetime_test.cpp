// Factories and the Reactor in any declaration order: a factory destroyed first stops its
// ports and connectors and closes the connections it built, so that no protocol outlives
// its factory (or what was declared with it). And Twisted's startFactory/stopFactory.
#include <doctest/doctest.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "protocols/timeout.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// What the protocols use, declared after the reactor in these tests.
struct Room {
  std::vector<std::string> said;
  int members = 0;
  ~Room() { alive = false; }
  bool alive = true;
};

// Uses the room in its constructor, its events and its destructor.
class Member : public Protocol {
 public:
  Member(Room& room, int& destroyed) : room_(room), destroyed_(destroyed) { ++room_.members; }
  ~Member() override {
    REQUIRE(room_.alive);  // a protocol must never outlive what its factory was given
    --room_.members;
    ++destroyed_;
  }
  void data_received(std::string_view data) override {
    room_.said.emplace_back(data);
    transport().write(data);
  }
  void connection_lost(const Reason&) override { room_.said.emplace_back("left"); }

 private:
  Room& room_;
  int& destroyed_;
};

// A client that records what it hears and whether its connection ended.
struct Peer : Protocol {
  explicit Peer(std::string& heard, bool& lost) : heard_(heard), lost_(lost) {}
  void connection_made() override { transport().write("hi"); }
  void data_received(std::string_view data) override { heard_.append(data); }
  void connection_lost(const Reason&) override { lost_ = true; }
  std::string& heard_;
  bool& lost_;
};

// A client factory that counts what it hears, including the start/stop hooks.
struct Client : ClientFactory {
  std::string heard;
  bool lost = false;
  int failed = 0;
  int connection_lost = 0;
  int starts = 0;
  int stops = 0;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<Peer>(heard, lost);
  }
  void client_connection_failed(Connector&, const Reason&) override { ++failed; }
  void client_connection_lost(Connector&, const Reason&) override { ++connection_lost; }
  void start_factory() override { ++starts; }
  void stop_factory() override { ++stops; }
};

// A server factory whose hooks count.
struct Hooked : Factory {
  int starts = 0;
  int stops = 0;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<Protocol>();
  }
  void start_factory() override { ++starts; }
  void stop_factory() override { ++stops; }
};

}  // namespace

TEST_CASE("the reactor declared first, then the factories: connections open at the end") {
  int destroyed = 0;  // outlives everything below
  {
    Reactor reactor;
    Room room;
    auto members = make_factory<Member>(std::ref(room), std::ref(destroyed));
    auto port = listen_tcp(reactor, 0, members, loopback());
    Client client;
    connect_tcp(reactor, "127.0.0.1", port->port(), client);
    wait_for(
        reactor, [&] { return client.heard == "hi"; }, "the echo");
    REQUIRE(room.members == 1);
    REQUIRE(reactor.connection_count() == 2);
    // Leaving the scope destroys client, members, room, then the reactor, with both
    // connections open: members closes its connection (and destroys the Member) while
    // room still exists.
  }
  CHECK(destroyed == 1);
}

TEST_CASE("a wrapping factory and its inner factory both declared after the reactor") {
  int destroyed = 0;
  {
    Reactor reactor;
    Room room;
    auto members = make_factory<Member>(std::ref(room), std::ref(destroyed));
    TimeoutFactory idle(members, reactor, 300);
    auto port = listen_tcp(reactor, 0, idle, loopback());
    Client client;
    connect_tcp(reactor, "127.0.0.1", port->port(), client);
    wait_for(
        reactor, [&] { return client.heard == "hi"; }, "the echo");
  }
  CHECK(destroyed == 1);
}

TEST_CASE("a factory destroyed while the reactor runs stops its port and closes its connections") {
  Reactor reactor;
  Room room;
  int destroyed = 0;
  Client client;
  int port_number = 0;
  std::weak_ptr<ListeningPort> weak_port;
  {
    auto members = make_factory<Member>(std::ref(room), std::ref(destroyed));
    auto port = listen_tcp(reactor, 0, members, loopback());
    port_number = port->port();
    weak_port = port;
    connect_tcp(reactor, "127.0.0.1", port_number, client);
    wait_for(
        reactor, [&] { return client.heard == "hi"; }, "the echo");
    REQUIRE(room.members == 1);
  }
  // At once: the Member is gone (without connection_lost), the port no longer listens.
  CHECK(destroyed == 1);
  CHECK(room.members == 0);
  CHECK(room.said == std::vector<std::string>{"hi"});
  if (auto port = weak_port.lock()) CHECK_FALSE(port->listening());
  wait_for(
      reactor, [&] { return client.lost; }, "the client sees its connection end");

  // A new attempt on that port is refused: nothing listens there any more.
  Client late;
  connect_tcp(reactor, "127.0.0.1", port_number, late);
  wait_for(
      reactor, [&] { return late.failed == 1; }, "the refused attempt");
  CHECK(late.heard.empty());
}

TEST_CASE("a client factory destroyed first: its connector stops, its connection closes") {
  Reactor reactor;
  Room room;
  int destroyed = 0;
  auto members = make_factory<Member>(std::ref(room), std::ref(destroyed));
  auto port = listen_tcp(reactor, 0, members, loopback());

  SUBCASE("while the attempt is in progress: no callback reaches it") {
    std::weak_ptr<Connector> weak;
    {
      Client client;
      weak = connect_tcp(reactor, "127.0.0.1", port->port(), client);
    }
    // The attempt completes on a destroyed factory: it is dropped, nothing is called.
    reactor.run_until([&] { return weak.expired(); }, test::kDeadline);
    CHECK(weak.expired());
    wait_for(
        reactor, [&] { return reactor.connection_count() == 0; }, "nothing left open");
  }
  SUBCASE("while connected: the connection closes, the server hears it") {
    {
      Client client;
      connect_tcp(reactor, "127.0.0.1", port->port(), client);
      wait_for(
          reactor, [&] { return client.heard == "hi"; }, "the echo");
    }
    wait_for(
        reactor, [&] { return destroyed == 1; }, "the server's protocol ends");
    CHECK(room.said.back() == "left");
  }
}

TEST_CASE("a factory over a Unix socket destroyed first closes its connections too") {
  Reactor reactor;
  Room room;
  int destroyed = 0;
  Client client;
  {
    auto members = make_factory<Member>(std::ref(room), std::ref(destroyed));
    const std::string path = "@torsion-factory-lifetime-" + std::to_string(::getpid());
    listen_unix(reactor, path, members);
    connect_unix(reactor, path, client);
    wait_for(
        reactor, [&] { return client.heard == "hi"; }, "the echo");
  }
  CHECK(destroyed == 1);
  wait_for(
      reactor, [&] { return client.lost; }, "the client sees its connection end");
}

TEST_CASE("start_factory with the first port, stop_factory after the last") {
  Reactor reactor;
  Hooked hooked;
  auto a = listen_tcp(reactor, 0, hooked, loopback());
  CHECK(hooked.starts == 1);
  auto b = listen_tcp(reactor, 0, hooked, loopback());
  CHECK(hooked.starts == 1);
  CHECK(hooked.users() == 2);
  a->stop_listening();
  a->stop_listening();  // idempotent: counted once
  CHECK(hooked.stops == 0);
  b->stop_listening();
  CHECK(hooked.stops == 1);
  CHECK(hooked.users() == 0);
  auto c = listen_tcp(reactor, 0, hooked, loopback());
  CHECK(hooked.starts == 2);
  SUBCASE("a shutdown stops the ports, so the factory hears stop_factory") {
    reactor.set_handle_signals(false);
    reactor.shutdown();
    reactor.run();  // returns once the shutdown is over
    CHECK(hooked.stops == 2);
  }
}

TEST_CASE("a connector starts its factory when it connects and stops it when done") {
  Reactor reactor;
  Room room;
  int destroyed = 0;
  auto members = make_factory<Member>(std::ref(room), std::ref(destroyed));
  auto port = listen_tcp(reactor, 0, members, loopback());
  Client client;
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(
      reactor, [&] { return client.heard == "hi"; }, "the echo");
  CHECK(client.starts == 1);
  CHECK(client.stops == 0);
  connector->disconnect();
  wait_for(
      reactor, [&] { return client.connection_lost == 1; }, "the connection ends");
  CHECK(client.stops == 1);

  port->stop_listening();
  connector->connect();  // refused now
  wait_for(
      reactor, [&] { return client.failed == 1; }, "the refused attempt");
  CHECK(client.starts == 2);
  CHECK(client.stops == 2);
}
