#include "examples/port_forward.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "framework/log.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/pattern_peer.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::examples::PortForwardFactory;
using torsion::test::AfterSending;
using torsion::test::loopback;
using torsion::test::PatternPeer;
using torsion::test::PeerResult;
using torsion::test::pattern_stream;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

TEST_CASE("port_forward: 64 MiB from a fast origin to a slow client, memory bounded") {
  Reactor reactor;
  const std::uint64_t total = 64ull * 1024 * 1024;
  PeerResult at_origin, at_client;
  FunctionFactory<> origin([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<PatternPeer>(reactor, total, 0, at_origin, AfterSending::close, 16);
  });
  auto origin_port = listen_tcp(reactor, 0, origin, loopback());
  PortForwardFactory forward(reactor, "127.0.0.1", origin_port->port());
  auto forward_port = listen_tcp(reactor, 0, forward, loopback());

  // The client sends nothing, reads slowly and closes at the origin's EOF.
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    auto peer = std::make_unique<PatternPeer>(reactor, 0, 0.0005, at_client, AfterSending::stay_open);
    peer->close_on_eof = true;
    return peer;
  });
  connect_tcp(reactor, "127.0.0.1", forward_port->port(), client);
  wait_for(reactor, [&] { return at_client.reason.has_value(); }, "64 MiB through the forwarder", 300);
  CHECK(at_client.received == total);
  CHECK_FALSE(at_client.corrupt);
  INFO("peak buffered " << forward.stats().peak_buffered);
  // The high mark (64 KiB) plus at most one read (128 KiB) from the paused side.
  CHECK(forward.stats().peak_buffered <= 64 * 1024 + 128 * 1024);
  wait_for(reactor, [&] { return forward.stats().pairs_open == 0; }, "the link to go");
  CHECK(forward.stats().pairs_total == 1);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("port_forward: an upload with half-close both ways, and the answer back") {
  Reactor reactor;
  const std::size_t total = 16 * 1024 * 1024;
  // The origin reads slowly, and answers with the count once the client's EOF arrives.
  struct Counting : Protocol {
    Reactor& reactor;
    std::uint64_t received = 0;
    bool corrupt = false;
    DelayedCall nap;
    explicit Counting(Reactor& r) : reactor(r) {}
    void data_received(std::string_view d) override {
      if (!pattern_stream().matches(received, d)) corrupt = true;
      received += d.size();
      transport().pause_producing();
      Transport* t = &transport();
      nap = reactor.call_later(0.0002, [t] { t->resume_producing(); });
    }
    bool eof_received() override {
      transport().write("got " + std::to_string(received) + (corrupt ? " corrupt" : " ok"));
      transport().lose_write_connection();
      return true;
    }
    void connection_lost(const Reason&) override { nap.cancel(); }
  };
  FunctionFactory<> origin(
      [&](const Address&) -> std::unique_ptr<Protocol> { return std::make_unique<Counting>(reactor); });
  auto origin_port = listen_tcp(reactor, 0, origin, loopback());
  PortForwardFactory forward(reactor, "127.0.0.1", origin_port->port());
  auto forward_port = listen_tcp(reactor, 0, forward, loopback());

  RecordingClientFactory client;
  client.setup = [&](Record& r) {
    r.keep_open_on_eof = true;
    r.on_made = [&](Record& rr) {
      rr.transport->write(pattern_stream().bytes(total));
      rr.transport->lose_write_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", forward_port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the answer and the close", 120);
  CHECK(client.records[0].received == "got " + std::to_string(total) + " ok");
  CHECK(client.records[0].eofs == 1);
  CHECK(client.records[0].reason->clean());
  CHECK(forward.stats().peak_buffered <= 64 * 1024 + 128 * 1024);
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to go");
  CHECK(forward.stats().pairs_open == 0);
}

TEST_CASE("port_forward: an unreachable destination closes the client's connection") {
  Reactor reactor;
  RecordingFactory nobody;
  auto closed = listen_tcp(reactor, 0, nobody, loopback());
  const int closed_port = closed->port();
  closed->stop_listening();
  PortForwardFactory forward(reactor, "127.0.0.1", closed_port);
  auto forward_port = listen_tcp(reactor, 0, forward, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("hello?"); }; };
  set_log_sink([](LogLevel, std::string_view) {});
  connect_tcp(reactor, "127.0.0.1", forward_port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the close");
  set_log_sink(nullptr);
  CHECK(client.records[0].received.empty());
  wait_for(reactor, [&] { return forward.stats().pairs_open == 0; }, "the link to go");
  CHECK(reactor.connection_count() == 0);
}

namespace {

// A listening socket on 127.0.0.1 that never accepts, its one-slot queue filled: further
// connection attempts to it stay pending (the kernel drops their SYNs) until they time out.
class BlackHole {
 public:
  BlackHole() {
    const auto raw = torsion::test::raw_listener(0);
    listener_ = raw.fd;
    port_ = raw.port;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(raw.port);
    for (int& fd : fillers_) {  // fill the accept queue; the later ones stay half-open
      fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      REQUIRE(fd >= 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
  }
  ~BlackHole() {
    for (int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  int fillers_[3] = {-1, -1, -1};
};

}  // namespace

TEST_CASE("port_forward: a client that leaves while the outbound connect is pending is let go at once") {
  BlackHole hole;
  Reactor reactor;
  PortForwardFactory forward(reactor, "127.0.0.1", hole.port());
  auto forward_port = listen_tcp(reactor, 0, forward, loopback());
  set_log_sink([](LogLevel, std::string_view) {});  // "cannot reach": the attempt was given up
  SUBCASE("the client closes without sending") {
    RecordingClientFactory client;
    client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->lose_connection(); }; };
    connect_tcp(reactor, "127.0.0.1", forward_port->port(), client);
    wait_for(reactor, [&] { return client.lost == 1; }, "the client's close");
    CHECK(forward.stats().pairs_total == 1);
  }
  SUBCASE("the client resets after sending a request") {
    RecordingClientFactory client;
    client.setup = [](Record& r) {
      r.on_made = [](Record& rr) {
        rr.transport->write("GET / HTTP/1.0\r\n\r\n");
        rr.transport->abort_connection();
      };
    };
    connect_tcp(reactor, "127.0.0.1", forward_port->port(), client);
    wait_for(reactor, [&] { return client.lost == 1; }, "the client's reset");
  }
  // Well before the 30 s connect time-out: the link and both descriptors are released.
  wait_for(reactor, [&] { return forward.stats().pairs_open == 0; }, "the link to go", 5);
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "no connection left", 5);
  set_log_sink(nullptr);
  CHECK(forward.stats().pairs_open == 0);
}
