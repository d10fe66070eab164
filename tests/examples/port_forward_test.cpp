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
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::examples::PortForwardFactory;
using torsion::test::loopback;
using torsion::test::pattern_stream;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// Sends `total` pattern bytes as a streaming producer, then closes (the origin server).
class Streamer : public Protocol, public Producer {
 public:
  Streamer(Reactor& reactor, std::uint64_t total) : reactor_(reactor), total_(total) {}
  void connection_made() override {
    transport().register_producer(*this, true);
    schedule();
  }
  void pause_producing() override { paused_ = true; }
  void resume_producing() override {
    paused_ = false;
    schedule();
  }
  void stop_producing() override { stopped_ = true; }
  void connection_lost(const Reason&) override { stopped_ = true; }

 private:
  void schedule() {
    if (scheduled_) return;
    scheduled_ = true;
    reactor_.call_soon([this] {
      scheduled_ = false;
      for (int i = 0; i < 16 && !paused_ && !stopped_ && sent_ < total_; ++i) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(64 * 1024, total_ - sent_));
        transport().write(pattern_stream().slice(sent_, n));
        sent_ += n;
      }
      if (stopped_) return;
      if (sent_ == total_) {
        transport().unregister_producer();
        transport().lose_connection();
        stopped_ = true;
      } else if (!paused_) {
        schedule();
      }
    });
  }
  Reactor& reactor_;
  std::uint64_t total_, sent_ = 0;
  bool paused_ = false, stopped_ = false, scheduled_ = false;
};

// Reads slowly (a nap after every read) and checks the pattern.
class SlowChecker : public Protocol {
 public:
  SlowChecker(Reactor& reactor, std::uint64_t& received, bool& corrupt, bool& lost)
      : reactor_(reactor), received_(received), corrupt_(corrupt), lost_(lost) {}
  void data_received(std::string_view d) override {
    if (!pattern_stream().matches(received_, d)) corrupt_ = true;
    received_ += d.size();
    transport().pause_producing();
    Transport* t = &transport();
    nap_ = reactor_.call_later(0.0005, [t] { t->resume_producing(); });
  }
  void connection_lost(const Reason&) override {
    nap_.cancel();
    lost_ = true;
  }

 private:
  Reactor& reactor_;
  std::uint64_t& received_;
  bool& corrupt_;
  bool& lost_;
  DelayedCall nap_;
};

}  // namespace

TEST_CASE("port_forward: 64 MiB from a fast origin to a slow client, memory bounded") {
  Reactor reactor;
  const std::uint64_t total = 64ull * 1024 * 1024;
  FunctionFactory<> origin([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Streamer>(reactor, total);
  });
  auto origin_port = listen_tcp(reactor, 0, origin, loopback());
  PortForwardFactory forward(reactor, "127.0.0.1", origin_port->port());
  auto forward_port = listen_tcp(reactor, 0, forward, loopback());

  std::uint64_t received = 0;
  bool corrupt = false, lost = false;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<SlowChecker>(reactor, received, corrupt, lost);
  });
  connect_tcp(reactor, "127.0.0.1", forward_port->port(), client);
  wait_for(reactor, [&] { return lost; }, "64 MiB through the forwarder", 300);
  CHECK(received == total);
  CHECK_FALSE(corrupt);
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
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 0) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
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
