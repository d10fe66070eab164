// The relay's zero-copy path (protocols/relay.hpp): between two sockets every byte moves
// socket -> pipe -> socket with splice(2). RelayStats::spliced shows the path was taken;
// the buffered path (zero_copy off) is the reference for what a peer sees.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include "framework/log.hpp"
#include "protocols/relay.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/pattern_peer.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::AfterSending;
using torsion::test::loopback;
using torsion::test::open_descriptors;
using torsion::test::PatternPeer;
using torsion::test::PeerResult;
using torsion::test::pattern_stream;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::settle;
using torsion::test::wait_for;

namespace {

// The relay's outgoing connections: to a TCP port on 127.0.0.1.
RelayConnect to_tcp(Reactor& reactor, int port) {
  return protocol_connector(reactor, "tcp:127.0.0.1:" + std::to_string(port));
}

// A relay listening on 127.0.0.1 in front of an origin (`origin`, listened on here on
// TCP, or on an abstract Unix socket when `unix_origin`).
struct Rig {
  Reactor& reactor;
  std::shared_ptr<ListeningPort> origin_port;
  std::unique_ptr<RelayFactory> relay;
  std::shared_ptr<ListeningPort> relay_port;

  Rig(Reactor& r, Factory& origin, bool unix_origin = false, bool zero_copy = true) : reactor(r) {
    if (unix_origin) {
      static int serial = 0;
      const std::string path = "@torsion-splice-" + std::to_string(::getpid()) + "-" +
                               std::to_string(++serial);
      origin_port = listen_unix(reactor, path, origin);
      relay = std::make_unique<RelayFactory>(protocol_connector(reactor, "unix:" + path));
    } else {
      origin_port = listen_tcp(reactor, 0, origin, loopback());
      relay = std::make_unique<RelayFactory>(to_tcp(reactor, origin_port->port()));
    }
    relay->set_zero_copy(zero_copy);
    relay_port = listen_tcp(reactor, 0, *relay, loopback());
  }
  const RelayStats& stats() const { return relay->stats(); }
  int port() const { return relay_port->port(); }
};

}  // namespace

TEST_CASE("relay splice: 48 MiB each way at once arrive byte-exact, through pipes") {
  bool unix_origin = false;
  SUBCASE("the origin on TCP") {}
  SUBCASE("the origin on a Unix socket") { unix_origin = true; }
  Reactor reactor;
  const std::uint64_t total = 48ull * 1024 * 1024;
  PeerResult at_origin, at_client;
  FunctionFactory<> origin([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<PatternPeer>(reactor, total, 0, at_origin, AfterSending::half_close, 16);
  });
  Rig rig(reactor, origin, unix_origin);
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<PatternPeer>(reactor, total, 0, at_client, AfterSending::half_close, 16);
  });
  connect_tcp(reactor, "127.0.0.1", rig.port(), client);
  REQUIRE(wait_for(
      reactor, [&] { return at_client.reason && at_origin.reason; }, "96 MiB through the relay",
      300));
  CHECK(at_client.received == total);
  CHECK(at_origin.received == total);
  CHECK_FALSE(at_client.corrupt);
  CHECK_FALSE(at_origin.corrupt);
  CHECK(at_client.eof);
  CHECK(at_origin.eof);
  CHECK(at_client.reason->clean());
  CHECK(at_origin.reason->clean());
  INFO("spliced " << rig.stats().spliced << " of " << 2 * total);
  // All but the reads that found a pipe full went through the pipes.
  CHECK(rig.stats().spliced >= total);
  CHECK(rig.stats().peak_buffered <= 256 * 1024);
  REQUIRE(wait_for(reactor, [&] { return rig.stats().pairs_open == 0; }, "the pair to go"));
  CHECK(reactor.connection_count() == 0);
}

namespace {

// One end of a half-close exchange: sends `size` pattern bytes and half-closes when
// `first`, else waits for the other's EOF, then answers with the count it read and closes.
void half_close_end(Record& r, bool first, std::size_t size) {
  r.keep_open_on_eof = true;
  if (first) {
    r.on_made = [size](Record& rr) {
      rr.transport->write(pattern_stream().bytes(size));
      rr.transport->lose_write_connection();
    };
  }
}

// Runs the exchange through a relay; returns what the first sender heard back, its EOF
// count and whether its connection ended cleanly.
std::tuple<std::string, int, bool> half_close_run(bool client_first, bool zero_copy,
                                                  std::uint64_t* spliced) {
  Reactor reactor;
  const std::size_t size = 3 * 1024 * 1024;
  RecordingFactory origin;
  origin.setup = [&](Record& r) { half_close_end(r, !client_first, size); };
  Rig rig(reactor, origin, false, zero_copy);
  RecordingClientFactory client;
  client.setup = [&](Record& r) { half_close_end(r, client_first, size); };
  // The second end answers at the first's EOF.
  auto answer = [](Record& r) {
    r.transport->write("got " + std::to_string(r.received.size()) +
                       (pattern_stream().matches(0, r.received) ? " ok" : " corrupt"));
    r.transport->lose_connection();
  };
  connect_tcp(reactor, "127.0.0.1", rig.port(), client);
  Record* second = nullptr;
  REQUIRE(wait_for(
      reactor,
      [&] {
        second = client_first ? (origin.records.empty() ? nullptr : &origin.records[0])
                              : (client.records.empty() ? nullptr : &client.records[0]);
        return second != nullptr && second->eofs == 1;
      },
      "the first sender's EOF at the other end", 120));
  CHECK(second->received.size() == size);
  answer(*second);
  Record& first = client_first ? client.records[0] : origin.records[0];
  REQUIRE(wait_for(reactor, [&] { return first.done() && second->done(); }, "both to close", 60));
  REQUIRE(wait_for(reactor, [&] { return rig.stats().pairs_open == 0; }, "the pair to go"));
  *spliced = rig.stats().spliced;
  return {first.received, first.eofs, first.reason->clean()};
}

}  // namespace

TEST_CASE("relay splice: a half-close in either direction, then the answer back") {
  for (const bool client_first : {true, false}) {
    CAPTURE(client_first);
    std::uint64_t spliced = 0, copied_spliced = 0;
    const auto spliced_run = half_close_run(client_first, true, &spliced);
    const auto buffered_run = half_close_run(client_first, false, &copied_spliced);
    const std::string expected = "got " + std::to_string(3 * 1024 * 1024) + " ok";
    CHECK(std::get<0>(spliced_run) == expected);
    CHECK(std::get<1>(spliced_run) == 1);
    CHECK(std::get<2>(spliced_run));
    CHECK(spliced_run == buffered_run);
    CHECK(spliced > 0);
    CHECK(copied_spliced == 0);
  }
}

namespace {

// Once the pair is up (the resetting end has heard from the other), one end sends 1 MiB
// and resets: what the other end sees (connection lost, cleanly or not, and its EOF
// count) with the relay splicing or copying.
std::tuple<int, bool, int> reset_run(bool client_resets, bool zero_copy, std::uint64_t* spliced) {
  Reactor reactor;
  auto resets = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() != 5) return;
      rr.transport->write(pattern_stream().bytes(1024 * 1024));
      rr.transport->abort_connection();
    };
  };
  auto greets = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("hello"); }; };
  RecordingFactory origin;
  origin.setup = client_resets ? std::function<void(Record&)>(greets) : resets;
  Rig rig(reactor, origin, false, zero_copy);
  RecordingClientFactory client;
  client.setup = client_resets ? std::function<void(Record&)>(resets) : greets;
  connect_tcp(reactor, "127.0.0.1", rig.port(), client);
  REQUIRE(wait_for(reactor, [&] { return client.lost == 1 && !origin.records.empty() &&
                                         origin.records[0].done(); },
                   "both ends to be lost", 60));
  REQUIRE(wait_for(reactor, [&] { return rig.stats().pairs_open == 0; }, "the pair to go"));
  CHECK(rig.stats().failed == 0);
  CHECK(reactor.connection_count() == 0);
  *spliced = rig.stats().spliced;
  const Record& other = client_resets ? origin.records[0] : client.records[0];
  return {other.lost, other.reason->clean(), other.eofs};
}

}  // namespace

TEST_CASE("relay splice: a peer's reset reaches the other end as on the buffered path") {
  for (const bool client_resets : {true, false}) {
    CAPTURE(client_resets);
    std::uint64_t spliced = 0, copied_spliced = 0;
    const auto spliced_run = reset_run(client_resets, true, &spliced);
    CHECK(std::get<0>(spliced_run) == 1);
    CHECK(spliced_run == reset_run(client_resets, false, &copied_spliced));
    if (client_resets) CHECK(spliced >= 5);  // the origin's greeting at least
    CHECK(copied_spliced == 0);
  }
}

TEST_CASE("relay splice: a reader that stops pauses the source; memory stays bounded") {
  bool unix_origin = false;
  SUBCASE("the origin on TCP") {}
  SUBCASE("the origin on a Unix socket") { unix_origin = true; }
  Reactor reactor;
  const std::size_t total = 64 * 1024 * 1024;
  Transport* origin_transport = nullptr;
  RecordingFactory origin;
  origin.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      origin_transport = rr.transport;
      rr.transport->write(pattern_stream().bytes(total));  // queued at the origin
      rr.transport->lose_connection();
    };
  };
  Rig rig(reactor, origin, unix_origin);
  PeerResult at_client;
  Transport* client_transport = nullptr;
  struct Stopped : PatternPeer {
    Transport** out;
    Stopped(Reactor& r, PeerResult& result, Transport** t)
        : PatternPeer(r, 0, 0, result, AfterSending::stay_open), out(t) {}
    void connection_made() override {
      PatternPeer::connection_made();
      *out = &transport();
      transport().pause_producing();  // reads nothing until the test says
    }
  };
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    auto peer = std::make_unique<Stopped>(reactor, at_client, &client_transport);
    peer->close_on_eof = true;
    return peer;
  });
  connect_tcp(reactor, "127.0.0.1", rig.port(), client);
  REQUIRE(wait_for(reactor, [&] { return rig.stats().spliced > 0; }, "the first splice"));
  // Drive the loop until the relay moves nothing more: the kernel's buffers between it and
  // the client are full, and it has stopped reading the origin.
  std::uint64_t last = 0;
  int still = 0;
  for (int round = 0; round < 20000 && still < 3; ++round) {
    settle(reactor);
    still = rig.stats().spliced == last ? still + 1 : 0;
    last = rig.stats().spliced;
  }
  REQUIRE(still == 3);
  REQUIRE(origin_transport != nullptr);
  INFO("spliced " << last << ", the origin holds " << origin_transport->buffer_size()
                  << ", peak buffered " << rig.stats().peak_buffered);
  CHECK(origin_transport->buffer_size() > total / 2);  // the origin was made to wait
  CHECK(last < total / 2);
  // The pipe (128 KiB for the default 64 KiB high mark) plus one read copied when a pipe
  // is full of small segments.
  CHECK(rig.stats().peak_buffered <= 256 * 1024);
  REQUIRE(client_transport != nullptr);
  client_transport->resume_producing();
  REQUIRE(wait_for(reactor, [&] { return at_client.reason.has_value(); }, "64 MiB at the client",
                   300));
  CHECK(at_client.received == total);
  CHECK_FALSE(at_client.corrupt);
  CHECK(rig.stats().peak_buffered <= 256 * 1024);
  CHECK(rig.stats().spliced >= total / 2);
  REQUIRE(wait_for(reactor, [&] { return rig.stats().pairs_open == 0; }, "the pair to go"));
}

TEST_CASE("relay splice: what the client sends while the outbound connection is made goes first") {
  Reactor reactor;
  const std::size_t early = 200 * 1024, later = 8 * 1024 * 1024;
  PeerResult at_origin;
  FunctionFactory<> origin([&](const Address&) -> std::unique_ptr<Protocol> {
    auto peer = std::make_unique<PatternPeer>(reactor, 0, 0, at_origin, AfterSending::stay_open);
    peer->close_on_eof = true;
    return peer;
  });
  auto origin_port = listen_tcp(reactor, 0, origin, loopback());
  // The outgoing connection starts only when `gate` fires.
  Deferred<void> gate;
  const int port = origin_port->port();
  const RelayConnect connect = to_tcp(reactor, port);
  RelayFactory relay([&](std::unique_ptr<Protocol> p) {
    return gate.add_callback(
        [&connect, p = std::move(p)]() mutable { return connect(std::move(p)); });
  });
  auto relay_port = listen_tcp(reactor, 0, relay, loopback());
  RecordingClientFactory client;
  client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) { rr.transport->write(pattern_stream().bytes(early)); };
  };
  connect_tcp(reactor, "127.0.0.1", relay_port->port(), client);
  REQUIRE(wait_for(reactor, [&] { return relay.stats().pairs_total == 1; }, "the accept"));
  settle(reactor);  // the early bytes are read and held
  CHECK(relay.stats().spliced == 0);
  gate.callback();
  REQUIRE(wait_for(reactor, [&] { return at_origin.received == early; }, "the early bytes"));
  client.records[0].transport->write(pattern_stream().slice(early, 1024 * 1024));
  for (std::size_t sent = early + 1024 * 1024; sent < early + later; sent += 1024 * 1024)
    client.records[0].transport->write(pattern_stream().slice(sent, 1024 * 1024));
  client.records[0].transport->lose_write_connection();
  REQUIRE(wait_for(reactor, [&] { return at_origin.reason.has_value(); }, "the rest", 120));
  CHECK(at_origin.received == early + later);
  CHECK_FALSE(at_origin.corrupt);
  CHECK(at_origin.eof);
  CHECK(relay.stats().spliced > 0);
  REQUIRE(wait_for(reactor, [&] { return relay.stats().pairs_open == 0; }, "the pair to go"));
}

TEST_CASE("relay splice: descriptors: two pipes per busy pair, made lazily, none left after 200 pairs") {
  Reactor reactor;
  RecordingFactory origin;
  origin.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };  // echo
  };
  Rig rig(reactor, origin);
  // One pair: four sockets here (client, relay in, relay out, origin), then a pipe each
  // way once bytes flowed; `before` is what is open without it.
  auto one_pair = [&](std::size_t before) {
    RecordingClientFactory client;
    const std::size_t accepted = origin.records.size();
    const std::uint64_t spliced = rig.stats().spliced;
    connect_tcp(reactor, "127.0.0.1", rig.port(), client);
    REQUIRE(wait_for(reactor, [&] { return origin.records.size() > accepted &&
                                           !client.records.empty() &&
                                           client.records[0].made == 1; },
                     "the pair"));
    settle(reactor);
    if (before > 0) CHECK(open_descriptors() == before + 4);  // no data yet: no pipe
    client.records[0].transport->write("ping");
    REQUIRE(wait_for(reactor, [&] { return client.records[0].received == "ping"; }, "the echo"));
    CHECK(rig.stats().spliced == spliced + 8);
    if (before > 0) CHECK(open_descriptors() == before + 8);  // a pipe each way
    client.records[0].transport->lose_connection();
    REQUIRE(wait_for(reactor, [&] { return client.lost == 1 && rig.stats().pairs_open == 0 &&
                                           reactor.connection_count() == 0; },
                     "the pair to go"));
  };
  one_pair(0);  // the reactor's own descriptors, made at first use, are there after it
  const std::size_t before = open_descriptors();
  one_pair(before);
  CHECK(open_descriptors() == before);

  std::size_t echoed = 0, lost = 0;
  struct Echoed : Protocol {
    std::size_t& echoed;
    std::size_t& lost;
    std::size_t received = 0;
    Echoed(std::size_t& e, std::size_t& l) : echoed(e), lost(l) {}
    void connection_made() override { transport().write(pattern_stream().bytes(64 * 1024)); }
    void data_received(std::string_view d) override {
      received += d.size();
      if (received < 64 * 1024) return;
      ++echoed;
      transport().lose_connection();
    }
    void connection_lost(const Reason&) override { ++lost; }
  };
  FunctionFactory<ClientFactory> clients([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Echoed>(echoed, lost);
  });
  for (int i = 0; i < 200; ++i) connect_tcp(reactor, "127.0.0.1", rig.port(), clients);
  REQUIRE(wait_for(reactor, [&] { return lost == 200; }, "200 echoes", 120));
  CHECK(echoed == 200);
  REQUIRE(wait_for(reactor, [&] { return rig.stats().pairs_open == 0 &&
                                         reactor.connection_count() == 0; },
                   "every pair to go"));
  // How much the pipes carry depends on timing: what a client sends before the relay's
  // outbound connection is up is held and copied (the early bytes), and a read made while
  // the other side's queue fills the pipe is copied too. Under load about half is spliced
  // (the 48 MiB case above shows the steady state).
  CHECK(rig.stats().spliced > 0);
  CHECK(open_descriptors() == before);
}
