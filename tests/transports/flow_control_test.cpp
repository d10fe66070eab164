// Flow control over real TCP connections: producers and water marks on the write side,
// pause/resume of reading on the read side.

#include <doctest/doctest.h>
#include <poll.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/transport.hpp"
#include "tests/support/flood.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/settle.hpp"
#include "tests/support/socket_probe.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/socket_options.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::pattern_stream;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// Reads slowly: after each read it stops reading for `nap` seconds. Checks every byte
// against the pattern as it arrives, keeping nothing.
class SlowReader : public Protocol {
 public:
  struct State {
    std::uint64_t received = 0;
    bool corrupt = false;
    bool lost = false;
    std::optional<Reason> reason;
    std::function<void()> on_data;  // runs after each chunk is checked
  };
  SlowReader(Reactor& reactor, State& state, double nap)
      : reactor_(reactor), s_(state), nap_(nap) {}
  void data_received(std::string_view data) override {
    if (!pattern_stream().matches(s_.received, data)) s_.corrupt = true;
    s_.received += data.size();
    if (s_.on_data) s_.on_data();
    if (nap_ <= 0) return;
    transport().pause_producing();
    Transport* t = &transport();
    timer_ = reactor_.call_later(nap_, [t] { t->resume_producing(); });
  }
  void connection_lost(const Reason& reason) override {
    timer_.cancel();
    s_.lost = true;
    s_.reason = reason;
  }

 private:
  Reactor& reactor_;
  State& s_;
  double nap_;
  DelayedCall timer_;
};

// A streaming (push) producer: writes pattern chunks from the loop as long as it is not
// paused, checking buffer_size() after every write.
class Pusher : public Producer {
 public:
  Pusher(Reactor& reactor, std::uint64_t total, std::size_t chunk)
      : reactor_(reactor), total_(total), chunk_(chunk) {}

  void start(Transport& t) {
    t_ = &t;
    t.register_producer(*this, true);
    schedule();
  }
  void pause_producing() override {
    if (paused_) ++double_pauses;
    paused_ = true;
    ++pauses;
  }
  void resume_producing() override {
    if (!paused_) ++double_resumes;
    paused_ = false;
    ++resumes;
    if (t_) resume_buffer = std::max(resume_buffer, t_->buffer_size());
    schedule();
  }
  void stop_producing() override {
    ++stops;
    t_ = nullptr;
  }

  int pauses = 0, resumes = 0, stops = 0, double_pauses = 0, double_resumes = 0;
  std::size_t max_buffer = 0;
  std::size_t resume_buffer = 0;  // the largest buffer_size() seen at a resume
  std::uint64_t sent = 0;
  bool done = false;
  bool paused_when_done = false;  // the write that finished the transfer paused us

 private:
  void schedule() {
    if (scheduled_ || paused_ || !t_) return;
    scheduled_ = true;
    reactor_.call_soon([this] {
      scheduled_ = false;
      step();
    });
  }
  void step() {
    // Up to 64 chunks per turn, but never past a pause: write() pauses us synchronously.
    for (int i = 0; i < 64 && t_ && !paused_ && sent < total_; ++i) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_, total_ - sent));
      t_->write(pattern_stream().slice(sent, n));
      sent += n;
      if (t_) max_buffer = std::max(max_buffer, t_->buffer_size());
    }
    if (t_ && sent == total_ && !done) {
      done = true;
      paused_when_done = paused_;  // the last write may have paused us (see the 256 MiB test)
      t_->unregister_producer();
      t_->lose_connection();
      t_ = nullptr;
      return;
    }
    schedule();
  }

  Reactor& reactor_;
  Transport* t_ = nullptr;
  std::uint64_t total_;
  std::size_t chunk_;
  bool paused_ = false;
  bool scheduled_ = false;
};

// A server whose protocol hands its transport to the test at connection_made.
struct TransportGrabber : Factory {
  std::function<void(Transport&)> on_made;
  std::function<void(const Reason&)> on_lost;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    struct P : Protocol {
      TransportGrabber& f;
      explicit P(TransportGrabber& g) : f(g) {}
      void connection_made() override {
        if (f.on_made) f.on_made(transport());
      }
      void connection_lost(const Reason& r) override {
        if (f.on_lost) f.on_lost(r);
      }
    };
    return std::make_unique<P>(*this);
  }
};

}  // namespace

TEST_CASE("a streaming producer pushing 256 MiB into a slow reader stays within the marks") {
  Reactor reactor;
  const std::uint64_t total = 256ull * 1024 * 1024;
  const std::size_t chunk = 64 * 1024;
  Pusher pusher(reactor, total, chunk);
  WriteBufferLimits limits;
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    limits = t.write_buffer_limits();
    pusher.start(t);
  };
  auto port = listen_tcp(reactor, 0, server, loopback());

  SlowReader::State reader;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<SlowReader>(reactor, reader, 0.0005);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return reader.lost; }, "256 MiB to arrive", 300);

  MESSAGE("256 MiB: " << pusher.pauses << " pauses, max buffer " << pusher.max_buffer
                      << ", largest buffer at resume " << pusher.resume_buffer);
  CHECK(limits.high == 64 * 1024);  // the documented defaults
  CHECK(limits.low == 16 * 1024);
  CHECK(reader.received == total);
  CHECK_FALSE(reader.corrupt);
  REQUIRE(reader.reason);
  CHECK(reader.reason->clean());
  CHECK(pusher.done);
  INFO("pauses " << pusher.pauses << ", max buffer " << pusher.max_buffer);
  CHECK(pusher.pauses > 10);  // the reader really was slower than the writer
  // Every pause is answered by a resume, except a pause from the very write that
  // finished the transfer: whether that last write crosses the high mark depends on how
  // much the kernel took just then (timing: it happens more often when the machine is
  // slow, e.g. under ASan). The producer then unregisters and calls lose_connection at
  // once, so no resume is owed to it: it has nothing left to send, and the transport
  // never resumes an unregistered producer. So pauses == resumes, or resumes + 1 exactly
  // when the producer was paused at the end; pauses and resumes alternate (no double
  // pause or resume), and memory stayed bounded (max_buffer, below).
  CHECK(pusher.pauses == pusher.resumes + (pusher.paused_when_done ? 1 : 0));
  CHECK(pusher.double_pauses == 0);
  CHECK(pusher.double_resumes == 0);
  CHECK(pusher.max_buffer <= limits.high + chunk);
  CHECK(pusher.resume_buffer <= limits.low);
  CHECK(pusher.stops == 0);  // unregistered before the close
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("a paused producer is not resumed once closing, and is stopped when the connection goes") {
  Reactor reactor;
  const std::size_t high = 4 * 1024 * 1024, low = 2 * 1024 * 1024;
  Pusher pusher(reactor, 0, 1);  // produces nothing itself: it only records the calls
  std::size_t at_register = 0;
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    set_send_buffer_size(t, 64 * 1024);  // small kernel buffer: the queue drains in steps
    t.set_write_buffer_limits(high, low);
    t.write(pattern_stream().bytes(12 * 1024 * 1024));
    at_register = t.buffer_size();
    pusher.start(t);  // the buffer is above the high mark: paused at once
    CHECK(pusher.pauses == 1);
    t.lose_connection();
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  SlowReader::State reader;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<SlowReader>(reactor, reader, 0.0002);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return reader.lost; }, "the transfer");
  CHECK(at_register > high);
  CHECK(pusher.pauses == 1);
  // lose_connection was called: the queue drains past the low mark, but a closing
  // transport does not resume its producer.
  CHECK(pusher.resumes == 0);
  CHECK(pusher.stops == 1);  // the connection went away with the producer registered
  CHECK(reader.received == 12 * 1024 * 1024);
  CHECK_FALSE(reader.corrupt);
}

TEST_CASE("resume comes at the low mark while the queue is still draining") {
  Reactor reactor;
  const std::size_t high = 4 * 1024 * 1024, low = 2 * 1024 * 1024;
  Pusher pusher(reactor, 0, 1);
  Transport* server_t = nullptr;
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    server_t = &t;
    set_send_buffer_size(t, 64 * 1024);
    t.set_write_buffer_limits(high, low);
    t.write(pattern_stream().bytes(12 * 1024 * 1024));
    pusher.start(t);
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  SlowReader::State reader;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<SlowReader>(reactor, reader, 0.0002);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return pusher.resumes == 1; }, "the resume");
  CHECK(pusher.pauses == 1);
  CHECK(pusher.resume_buffer <= low);
  CHECK(pusher.resume_buffer > 0);  // resumed at the low mark, before the queue emptied
  server_t->unregister_producer();
  server_t->lose_connection();
  wait_for(reactor, [&] { return reader.lost; }, "the rest");
  CHECK(reader.received == 12 * 1024 * 1024);
  CHECK_FALSE(reader.corrupt);
}

TEST_CASE("a push producer starts unpaused, and paused when the buffer is already full") {
  Reactor reactor;
  Pusher fresh(reactor, 0, 1), late(reactor, 0, 1);
  TransportGrabber server;
  int step = 0;
  server.on_made = [&](Transport& t) {
    // Empty buffer: registering calls neither pause_producing nor resume_producing.
    t.register_producer(fresh, true);
    CHECK(fresh.pauses == 0);
    CHECK(fresh.resumes == 0);
    CHECK_THROWS_AS(t.register_producer(late, true), std::logic_error);
    t.unregister_producer();
    // Above the high mark: pause_producing comes from inside register_producer.
    set_send_buffer_size(t, 4096);
    t.set_write_buffer_limits(1024, 512);
    t.write(std::string(4 * 1024 * 1024, 'x'));
    REQUIRE(t.buffer_size() > 1024);
    t.register_producer(late, true);
    CHECK(late.pauses == 1);
    t.unregister_producer();
    t.abort_connection();
    step = 1;
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return step == 1 && client.lost == 1; }, "the checks");
  CHECK(fresh.stops == 0);  // unregistered: not called
  CHECK(late.stops == 0);
}

TEST_CASE("every write path checks the high mark") {
  Reactor reactor;
  int checked = 0;
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    set_send_buffer_size(t, 4096);
    const std::string big(2 * 1024 * 1024, 'b');  // more than the kernel takes
    for (int path = 0; path < 3; ++path) {
      t.set_write_buffer_limits(t.buffer_size() + 100 * 1024, 10 * 1024);
      Pusher p(reactor, 0, 1);
      t.register_producer(p, true);
      CHECK(p.pauses == 0);
      if (path == 0) t.write(big);
      if (path == 1) t.write(std::string(big));
      if (path == 2) {
        std::string_view parts[] = {big, "x"};
        t.write_sequence(parts);
      }
      CHECK(p.pauses == 1);
      t.unregister_producer();
      ++checked;
    }
    t.abort_connection();
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the checks");
  CHECK(checked == 3);
}

TEST_CASE("write buffer limits: setter and getter agree, bad limits throw") {
  Reactor reactor;
  bool done = false;
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    t.set_write_buffer_limits(1000, 10);
    CHECK(t.write_buffer_limits().high == 1000);
    CHECK(t.write_buffer_limits().low == 10);
    t.set_write_buffer_limits(7, 7);
    CHECK(t.write_buffer_limits().high == 7);
    CHECK_THROWS_WITH_AS(t.set_write_buffer_limits(10, 11), doctest::Contains("11"),
                         std::invalid_argument);
    CHECK(t.write_buffer_limits().high == 7);  // unchanged
    t.lose_connection();
    done = true;
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return done && client.lost == 1; }, "the checks");
}

namespace {

// A pull producer: each resume_producing writes one chunk, except that `skip_at` makes
// it write nothing once; the test writes for it later.
class Puller : public Producer {
 public:
  Puller(std::uint64_t total, std::size_t chunk) : total_(total), chunk_(chunk) {}
  void pause_producing() override { ++pauses; }
  void resume_producing() override {
    ++resumes;
    if (!t) return;
    if (t->buffer_size() != 0) ++resumed_nonempty;
    if (resumes == skip_at) return;  // nothing to say this time
    write_chunk();
  }
  void stop_producing() override { ++stops; }
  void write_chunk() {
    if (sent == total_) {
      t->unregister_producer();
      t->lose_connection();
      t = nullptr;
      return;
    }
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_, total_ - sent));
    t->write(pattern_stream().slice(sent, n));
    sent += n;
  }
  Transport* t = nullptr;
  int resumes = 0, pauses = 0, stops = 0, resumed_nonempty = 0, skip_at = -1;
  std::uint64_t sent = 0;

 private:
  std::uint64_t total_;
  std::size_t chunk_;
};

}  // namespace

TEST_CASE("a pull producer is asked for more each time the buffer empties, and not spun on") {
  Reactor reactor;
  const std::uint64_t total = 32 * 1024 * 1024;
  Puller puller(total, 256 * 1024);
  puller.skip_at = 5;
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    puller.t = &t;
    t.register_producer(puller, false);
    CHECK(puller.resumes == 0);  // asked from the loop, not from inside register_producer
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  SlowReader::State reader;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<SlowReader>(reactor, reader, 0.0002);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return puller.resumes == 5; }, "five pulls");
  // The fifth pull wrote nothing: the transport must wait for a write, not ask again.
  // A transport that asked again would do so from the loop as soon as it found the buffer
  // still empty: by the time settle's sentinel arrives.
  test::settle(reactor);
  CHECK(puller.resumes == 5);
  puller.write_chunk();  // the producer has something again
  wait_for(reactor, [&] { return reader.lost; }, "the whole stream");
  CHECK(reader.received == total);
  CHECK_FALSE(reader.corrupt);
  CHECK(puller.resumed_nonempty == 0);
  CHECK(puller.pauses == 0);  // a pull producer is never paused
  CHECK(puller.resumes == static_cast<int>(total / (256 * 1024)) + 1);  // +1: the empty pull
  CHECK(puller.stops == 0);
}

TEST_CASE("a producer registered on a connection that goes away is stopped") {
  Reactor reactor;
  Puller puller(1ull << 40, 64 * 1024);  // endless
  TransportGrabber server;
  server.on_made = [&](Transport& t) {
    puller.t = &t;
    t.register_producer(puller, false);
  };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() > 1024 * 1024) rr.transport->abort_connection();
    };
  };
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return puller.stops == 1; }, "stop_producing");
  CHECK(puller.resumes > 4);
  CHECK(reactor.connection_count() == 0);
}

// --- reading: the transport as a producer of incoming data ---------------------------

TEST_CASE("pause_producing in connection_made: no data until resumed, then all in order") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->pause_producing(); }; };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.records.size() == 1 && server.records.size() == 1; },
           "the connection");
  Record& s = server.records[0];
  Transport& c = *client.records[0].transport;
  c.write("first,");
  wait_for(reactor, [&] { return readable(s.transport->native_handle()); }, "bytes to arrive");
  c.write("second,");
  // Both writes wait in the server's kernel buffer: a transport that read would have
  // drained it, so this condition can only be reached if reading stayed paused.
  wait_for(reactor, [&] { return test::unread_bytes(s.transport->native_handle()) == 13; },
           "both writes to wait in the kernel");
  CHECK(s.received.empty());
  s.transport->pause_producing();  // idempotent
  s.transport->resume_producing();
  s.transport->resume_producing();  // idempotent
  wait_for(reactor, [&] { return s.received.size() == 13; }, "the held data");
  CHECK(s.received == "first,second,");
  c.lose_connection();
  wait_for(reactor, [&] { return s.done(); }, "the close");
  CHECK(s.reason->clean());
}

TEST_CASE("pause and resume reading with data arriving in between") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.records.size() == 1 && server.records.size() == 1; },
           "the connection");
  Record& s = server.records[0];
  Transport& c = *client.records[0].transport;
  const auto& pat = pattern_stream();
  std::uint64_t written = 0;
  auto send = [&](std::size_t n) {
    c.write(pat.slice(written, n));
    written += n;
  };
  for (int round = 0; round < 20; ++round) {
    // Pause from outside a callback (a read is pending: what it gets is held back).
    s.transport->pause_producing();
    const std::size_t before = s.received.size();
    send(1000 + static_cast<std::size_t>(round) * 7919);
    wait_for(reactor, [&] { return c.buffer_size() == 0; }, "the client to send");
    send(10);
    reactor.run_until([&] { return readable(s.transport->native_handle()); }, 1.0);
    CHECK(s.received.size() == before);
    s.transport->resume_producing();
    if (round % 3 == 0) s.transport->pause_producing(), s.transport->resume_producing();
    wait_for(reactor, [&] { return s.received.size() == written; }, "the held data");
  }
  // Pause inside data_received, resume from a timer.
  s.on_data = [&](Record& rr, std::string_view) {
    rr.transport->pause_producing();
    Transport* t = rr.transport;
    reactor.call_later(0.001, [t] { t->resume_producing(); });
  };
  for (int i = 0; i < 50; ++i) send(3000);
  wait_for(reactor, [&] { return s.received.size() == written; }, "everything");
  CHECK(pat.matches(0, s.received));
  c.lose_connection();
  wait_for(reactor, [&] { return s.done() && client.lost == 1; }, "the close");
  CHECK(reactor.connection_count() == 0);
}

// --- Back-pressure by default (no producer) ------------------------------------------
// The same checks over TLS are in tls_flow_control_test.cpp (tests/support/flood.hpp).

namespace {

void start_over_tcp(test::Flood& f) {
  f.start([&] { return listen_tcp(f.reactor, 0, f.server, loopback()); },
          [&](int port) { return connect_tcp(f.reactor, "127.0.0.1", port, f.client); });
}

}  // namespace

TEST_CASE("back-pressure by default: an echo to a peer that never reads stops reading") {
  test::Flood f(/*pause_reading_when_full=*/true);
  start_over_tcp(f);
  const std::string payload = f.flood_until_held();
  CHECK(f.entered_above_high == 0);
  // The peer reads again: the server's queue drains to the low mark and reading resumes,
  // until everything has come back, in order.
  f.finish(payload);
  CHECK(f.entered_above_high == 0);  // never handed data while above the high mark
  // The queue passed the high mark by one read at most.
  CHECK(f.max_buffer <= test::Flood::kHigh + 128 * 1024);
}

TEST_CASE("set_pause_reading_when_full(false): reading goes on and the queue grows") {
  test::Flood f(/*pause_reading_when_full=*/false);
  start_over_tcp(f);
  const std::string payload = f.flood_past_a_megabyte();
  CHECK(f.entered_above_high > 0);
  f.finish(payload);
}
