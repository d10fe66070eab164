// Faults and load: many concurrent connections, peers that vanish mid-write, descriptor
// exhaustion, slow (slowloris) peers. Loopback only, bounded in count and time; every test asserts the outcome.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "framework/reactor.hpp"
#include "protocols/line_receiver.hpp"
#include "protocols/timeout.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// Counts live echo protocols on the server.
struct CountingEcho : Protocol {
  explicit CountingEcho(int& live, int& total) : live_(live) { ++live_, ++total; }
  ~CountingEcho() override { --live_; }
  void data_received(std::string_view d) override { transport().write(d); }
  int& live_;
};

// Client side of the load test: opens `count` connections, at most `window` handshakes
// at a time; each sends 64 bytes and checks the echo; when every connection has its
// echo, all close. Exit status 0 only if all of that happened.
int run_clients(int port, int count, int window) {
  Reactor reactor;
  int connecting = 0, echoed = 0, lost_clean = 0, failed = 0;
  std::vector<Transport*> open;
  const std::string message(64, 'm');

  struct Client : Protocol {
    Client(int& echoed_, std::vector<Transport*>& open_, const std::string& m)
        : echoed(echoed_), open(open_), message(m) {}
    void connection_made() override { transport().write(message); }
    void data_received(std::string_view d) override {
      got.append(d);
      if (got.size() == message.size() && got == message) {
        ++echoed;
        open.push_back(&transport());
      }
    }
    int& echoed;
    std::vector<Transport*>& open;
    const std::string& message;
    std::string got;
  };

  struct Factory : ClientFactory {
    std::function<std::unique_ptr<Protocol>()> make;
    std::function<void(bool)> done;
    std::unique_ptr<Protocol> build_protocol(const Address&) override { return make(); }
    void client_connection_failed(Connector&, const Reason&) override { done(false); }
    void client_connection_lost(Connector&, const Reason& r) override { done(r.clean()); }
  } factory;
  factory.make = [&] {
    --connecting;
    return std::make_unique<Client>(echoed, open, message);
  };
  factory.done = [&](bool clean) {
    if (clean)
      ++lost_clean;
    else
      ++failed;
  };
  int started = 0;
  std::vector<std::shared_ptr<Connector>> connectors;
  connectors.reserve(static_cast<std::size_t>(count));
  auto top_up = [&] {
    while (started < count && connecting < window) {
      ++started, ++connecting;
      connectors.push_back(connect_tcp(reactor, "127.0.0.1", port, factory));
    }
  };
  top_up();
  const bool all_echoed = reactor.run_until(
      [&] {
        top_up();
        return echoed == count || failed > 0;
      },
      120);
  if (!all_echoed || failed > 0) return 2;
  for (Transport* t : open) t->lose_connection();
  const bool all_closed = reactor.run_until([&] { return lost_clean + failed == count; }, 60);
  if (!all_closed || failed > 0) return 3;
  return reactor.connection_count() == 0 ? 0 : 4;
}

}  // namespace

TEST_CASE("ten_thousand_concurrent_connections leave nothing behind") {
  constexpr int kConnections = 10000;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max < kConnections + 200) {
    MESSAGE("skipped: RLIMIT_NOFILE hard limit " << limit.rlim_max << " is below "
                                                 << kConnections + 200);
    return;
  }
  const rlimit saved = limit;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);

  const std::size_t fds_before = test::open_descriptors();
  const std::size_t heap_before = test::heap_in_use();
  {
    Reactor reactor;
    int live = 0, total = 0;
    FunctionFactory<> factory([&](const Address&) -> std::unique_ptr<Protocol> {
      return std::make_unique<CountingEcho>(live, total);
    });
    auto port = listen_tcp(reactor, 0, factory, loopback(4096));
    const int port_number = port->port();
    const pid_t child =
        test::fork_child([port_number] { return run_clients(port_number, kConnections, 500); });
    int status = -1;
    bool exited = false;  // waitpid reaps once: remember it
    std::size_t peak = 0;
    wait_for(
        reactor,
        [&] {
          peak = std::max(peak, reactor.connection_count());
          exited = exited || test::child_exited(child, status);
          return exited && live == 0;
        },
        "10,000 clients to connect, echo and close", 180);
    CHECK(status == 0);
    CHECK(total == kConnections);
    CHECK(live == 0);
    CHECK(peak == kConnections);  // they really were all open at once
    CHECK(reactor.connection_count() == 0);
    port->stop_listening();
    // Asio keeps a pool of per-descriptor records for reuse while its io_context lives.
    MESSAGE("heap held by the reactor after 10,000 connections: "
            << test::heap_in_use() - heap_before << " bytes");
  }
  const std::size_t heap_after = test::heap_in_use();
  INFO("heap before " << heap_before << ", after " << heap_after);
  CHECK(heap_after <= heap_before + 64 * 1024);
  CHECK(test::open_descriptors() == fds_before);
  setrlimit(RLIMIT_NOFILE, &saved);
}

TEST_CASE("peer_closes_while_megabytes_are_queued") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write(std::string(32 * 1024 * 1024, 'q')); };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  // The client reads a little, then aborts (RST) with most of the 32 MiB still queued.
  client.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() > 100000) rr.transport->abort_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return server.records.size() == 1 && server.records[0].done(); },
           "the server to notice the reset");
  CHECK_FALSE(server.records[0].reason->clean());
  CHECK(server.records[0].reason->is(error::connection_lost));
  CHECK(server.records[0].lost == 1);
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every transport to go");
}

TEST_CASE("peer_closes_cleanly_while_we_still_write") {
  Reactor reactor;
  RecordingFactory server;
  // Keeps writing 1 MiB per received byte; the client closes without reading it all.
  server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) {
      rr.transport->write(std::string(1024 * 1024, 'w'));
    };
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("go"); };
    r.on_data = [](Record& rr, std::string_view) { rr.transport->lose_connection(); };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor,
           [&] { return client.lost == 1 && server.records.size() == 1 && server.records[0].done(); },
           "both sides to finish");
  CHECK(client.records[0].reason->clean());
  CHECK(server.records[0].lost == 1);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("descriptor_exhaustion_on_connect fails the attempt cleanly") {
  // In a child: lower RLIMIT_NOFILE, use up every descriptor, then connect.
  Reactor parent;
  RecordingFactory server;
  auto port = listen_tcp(parent, 0, server, loopback());
  const int port_number = port->port();
  const pid_t child = test::fork_child([port_number] {
    Reactor reactor;
    rlimit low{64, 64};
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return 10;
    std::vector<int> hogs;
    for (int fd; (fd = ::dup(0)) >= 0;) hogs.push_back(fd);
    if (errno != EMFILE) return 11;
    RecordingClientFactory client;
    connect_tcp(reactor, "127.0.0.1", port_number, client);
    if (!reactor.run_until([&] { return client.failed == 1; }, 10)) return 12;
    if (client.failure->cause() != std::errc::too_many_files_open) return 13;
    // With descriptors back, the same reactor connects fine.
    for (int fd : hogs) ::close(fd);
    RecordingClientFactory again;
    connect_tcp(reactor, "127.0.0.1", port_number, again);
    if (!reactor.run_until([&] { return !again.records.empty() && again.records[0].made == 1; }, 10))
      return 14;
    return 0;
  });
  int status = -1;
  wait_for(parent, [&] { return test::child_exited(child, status); }, "the child");
  CHECK(status == 0);
}

namespace {

// Server side of the slowloris test: echoes lines, and records the most it ever buffered
// and how its connection ended.
struct LineOutcome {
  std::size_t peak_buffered = 0;
  std::optional<Reason> reason;
  int lines = 0;
};

class EchoLines : public LineReceiver {
 public:
  static constexpr std::size_t kMaxLength = 64;
  explicit EchoLines(LineOutcome& out) : LineReceiver("\r\n", kMaxLength), out_(out) {}
  void line_received(std::string_view line) override {
    ++out_.lines;
    send_line(line);
  }
  void data_received(std::string_view data) override {
    LineReceiver::data_received(data);
    out_.peak_buffered = std::max(out_.peak_buffered, buffered_size());
  }
  void connection_lost(const Reason& reason) override { out_.reason = reason; }

 private:
  LineOutcome& out_;
};

// A slowloris client: one byte of a line that never ends, every `interval` seconds,
// timed by the reactor; records when it sent its first byte and when and how it ended.
struct SlowOutcome {
  double first_byte = -1;
  double lost_at = -1;
  std::size_t sent = 0;
  std::optional<Reason> reason;
};

class SlowClient : public Protocol {
 public:
  SlowClient(Reactor& reactor, SlowOutcome& out, double interval)
      : reactor_(reactor), out_(out), interval_(interval) {}
  ~SlowClient() override { tick_.cancel(); }
  void connection_made() override {
    out_.first_byte = reactor_.seconds();
    send_one();
  }
  void connection_lost(const Reason& reason) override {
    tick_.cancel();
    out_.lost_at = reactor_.seconds();
    out_.reason = reason;
  }

 private:
  void send_one() {
    static constexpr std::string_view kNeverEnding = "GET /slowly HTTP/1.1 X-a: b ";
    transport().write(kNeverEnding.substr(out_.sent++ % kNeverEnding.size(), 1));
    tick_ = reactor_.call_later(interval_, [this] { send_one(); });
  }
  Reactor& reactor_;
  SlowOutcome& out_;
  double interval_;
  DelayedCall tick_;
};

}  // namespace

TEST_CASE("slowloris: a hundred peers dripping one byte at a time are cut off by the line deadline") {
  // Time scaled down: a byte every 25 ms, a whole line due within 0.4 s, an idle time-out
  // of 1 s. The idle time-out alone would never fire (each byte resets it); the line
  // deadline, which partial data does not extend, must close every slow peer, while a
  // normal client is served at once.
  constexpr int kSlow = 100;
  constexpr double kInterval = 0.025;
  constexpr double kLineDeadline = 0.4;
  Reactor reactor;

  std::deque<LineOutcome> served;  // one per accepted connection, in accept order
  FunctionFactory<> lines([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<EchoLines>(served.emplace_back());
  });
  LineDeadlineFactory deadline(lines, reactor, kLineDeadline);
  TimeoutFactory idle(deadline, reactor, 1.0);
  auto port = listen_tcp(reactor, 0, idle, loopback());

  std::deque<SlowOutcome> slow;
  FunctionFactory<ClientFactory> slow_factory([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<SlowClient>(reactor, slow.emplace_back(), kInterval);
  });
  std::vector<std::shared_ptr<Connector>> connectors;
  for (int i = 0; i < kSlow; ++i)
    connectors.push_back(connect_tcp(reactor, "127.0.0.1", port->port(), slow_factory));
  // The attack is on: every slow peer connected and has sent a few bytes.
  wait_for(reactor,
           [&] {
             return slow.size() == kSlow && std::all_of(slow.begin(), slow.end(), [](auto& s) {
                      return s.sent >= 3;
                    });
           },
           "every slow peer to start dripping");
  CHECK(deadline.expired_count() == 0);

  // A normal client during the attack: its line is echoed at once.
  RecordingClientFactory normal;
  double asked = reactor.seconds(), answered = -1;
  std::size_t expired_when_answered = 0;
  normal.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      asked = reactor.seconds();
      rr.transport->write("hello\r\n");
    };
    r.on_data = [&](Record& rr, std::string_view) {
      if (rr.received != "hello\r\n") return;
      answered = reactor.seconds();
      expired_when_answered = deadline.expired_count();
      rr.transport->lose_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), normal);
  wait_for(reactor, [&] { return normal.lost == 1; }, "the normal client to be served");
  CHECK(answered >= asked);
  CHECK(expired_when_answered == 0);  // served while every slow peer was still connected
  CHECK(answered - asked < kLineDeadline);
  CHECK(normal.records[0].reason->clean());

  wait_for(reactor,
           [&] {
             return std::all_of(slow.begin(), slow.end(), [](auto& s) { return s.reason.has_value(); }) &&
                    reactor.connection_count() == 0;
           },
           "every slow peer to be cut off", 30);
  CHECK(deadline.expired_count() == kSlow);
  CHECK(reactor.connection_count() == 0);
  CHECK(idle.connection_count() == 0);

  double slowest = 0;
  for (const SlowOutcome& s : slow) {
    REQUIRE(s.reason);
    CHECK_FALSE(s.reason->clean());  // the server reset it
    const double held = s.lost_at - s.first_byte;
    slowest = std::max(slowest, held);
    CHECK(held >= kLineDeadline);
    // Bounded: cut off long before it could have sent a line of max length (64 * 25 ms).
    CHECK(held < EchoLines::kMaxLength * kInterval);
  }
  REQUIRE(served.size() == kSlow + 1);
  int timed_out = 0;
  std::size_t peak = 0;
  for (const LineOutcome& o : served) {
    REQUIRE(o.reason);
    peak = std::max(peak, o.peak_buffered);
    if (o.lines == 1) {  // the normal client
      CHECK(o.reason->clean());
      continue;
    }
    CHECK(o.lines == 0);
    CHECK(o.reason->is(error::timed_out));
    timed_out += o.reason->is(error::timed_out);
    CHECK(o.peak_buffered <= EchoLines::kMaxLength);
  }
  CHECK(timed_out == kSlow);
  MESSAGE("slowloris: " << kSlow << " peers, the slowest held " << slowest
                        << " s (deadline " << kLineDeadline << " s); at most " << peak
                        << " bytes buffered per connection; a normal line echoed in "
                        << answered - asked << " s");
}
