#include "transports/detail/stream_engine.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

// Corking: writes made inside data_received leave together, in one send, when it returns,
// in order with every other write (see the top of transports/detail/stream_engine.hpp).

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

std::uint64_t write_calls(Transport* t) {
  auto* counter = dynamic_cast<detail::WriteCounter*>(t);
  REQUIRE(counter != nullptr);
  return counter->write_calls;
}

// A pattern that shows reordering or loss: byte i is a function of i and of `salt`.
std::string pattern(std::size_t size, std::size_t salt) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + salt * 13 + i / 251) % 26);
  return s;
}

// A server whose data_received runs `answer` once (on the first byte), and a client that
// sends that byte and records what comes back. Drives the reactor until `done`.
struct Pair {
  Reactor reactor;
  RecordingFactory server;
  RecordingClientFactory client;
  std::shared_ptr<ListeningPort> port;
  std::shared_ptr<Connector> connector;

  explicit Pair(std::function<void(Record&)> answer, bool client_keeps_open = false) {
    server.setup = [answer](Record& r) {
      r.on_data = [answer, fired = false](Record& rr, std::string_view) mutable {
        if (fired) return;
        fired = true;
        answer(rr);
      };
    };
    port = listen_tcp(reactor, 0, server, loopback());
    client.setup = [client_keeps_open](Record& r) {
      r.keep_open_on_eof = client_keeps_open;
      r.on_made = [](Record& rr) { rr.transport->write("?"); };
    };
    connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  }
  Record& srv() { return server.records.at(0); }
  Record& cli() { return client.records.at(0); }
};

}  // namespace

TEST_CASE("a thousand small writes inside one data_received leave in one send") {
  constexpr std::size_t kWrites = 1000, kSize = 8;  // 8000 bytes: the kernel takes them whole
  std::string expected;
  for (std::size_t i = 0; i < kWrites; ++i) expected += pattern(kSize, i);
  std::uint64_t before = 0, after = 0;
  Pair p([&](Record& r) {
    before = write_calls(r.transport);
    for (std::size_t i = 0; i < kWrites; ++i) r.transport->write(pattern(kSize, i));
  });
  wait_for(
      p.reactor,
      [&] { return !p.client.records.empty() && p.cli().received.size() >= expected.size(); },
      "the whole answer");
  after = write_calls(p.srv().transport);
  // All of them, the first included, in one gathered send after data_received.
  CHECK(after - before == 1);
  CHECK(p.cli().received == expected);
  p.cli().transport->lose_connection();
  wait_for(
      p.reactor, [&] { return p.srv().done() && p.cli().done(); }, "both sides to close");
  CHECK(p.reactor.connection_count() == 0);
}

TEST_CASE("a lone write in data_received costs one send, made when data_received returns") {
  std::uint64_t before = 0, during = 0;
  std::size_t queued = 0;
  Pair p([&](Record& r) {
    before = write_calls(r.transport);
    r.transport->write("answer");
    during = write_calls(r.transport);
    queued = r.transport->buffer_size();
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().received == "answer"; },
      "the answer");
  CHECK(during - before == 0);
  CHECK(queued == 6);  // held until data_received returned
  CHECK(write_calls(p.srv().transport) - before == 1);
}

TEST_CASE("corked writes keep their order with every write path and with later writes") {
  const std::string big = pattern(200 * 1024, 99);  // larger than the cork limit
  std::string expected;
  Pair p([&](Record& r) {
    Transport& t = *r.transport;
    t.write("first;");
    t.write("second;");  // corked
    t.write(std::string("owned;"));
    const std::vector<std::string_view> parts{"p1;", "p2;", "p3;"};
    t.write_sequence(parts);
    t.write(std::string_view(big));        // uncorks: what was corked leaves first
    t.write("after-big;");                 // corked again behind the big one
    t.write(std::string(20 * 1024, 'L'));  // a large owned string: moved in behind
    t.write("last-inside;");
  });
  expected = "first;second;owned;p1;p2;p3;" + big + "after-big;" + std::string(20 * 1024, 'L') +
             "last-inside;";
  // A write made from the loop after data_received returned goes behind all of it, even
  // while the kernel still holds back part of the big write.
  wait_for(
      p.reactor, [&] { return !p.server.records.empty() && !p.srv().received.empty(); },
      "the request");
  p.srv().transport->write("outside;");
  wait_for(
      p.reactor,
      [&] { return !p.client.records.empty() && p.cli().received.size() >= expected.size() + 8; },
      "everything, in order");
  CHECK(p.cli().received == expected + "outside;");
}

TEST_CASE("lose_connection inside data_received sends what was corked, then closes cleanly") {
  Pair p([](Record& r) {
    for (int i = 0; i < 100; ++i) r.transport->write(std::to_string(i) + ",");
    r.transport->lose_connection();
    r.transport->write("dropped: written after lose_connection");
  });
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += std::to_string(i) + ",";
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().done() && p.srv().done(); },
      "both sides to close");
  CHECK(p.cli().received == expected);
  CHECK(p.cli().eofs == 1);
  CHECK(p.srv().reason->clean());
  CHECK(p.reactor.connection_count() == 0);
}

TEST_CASE("lose_write_connection inside data_received sends what was corked, then the FIN") {
  Pair p(
      [](Record& r) {
        for (int i = 0; i < 100; ++i) r.transport->write(std::to_string(i) + ",");
        r.transport->lose_write_connection();
      },
      /*client_keeps_open=*/true);
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += std::to_string(i) + ",";
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().eofs == 1; },
      "the client to hear end of file");
  CHECK(p.cli().received == expected);
  CHECK_FALSE(p.srv().done());  // the server still reads
  p.cli().transport->write("still heard");
  wait_for(
      p.reactor, [&] { return p.srv().received == "?still heard"; }, "the server to read on");
  p.cli().transport->lose_connection();
  wait_for(
      p.reactor, [&] { return p.srv().done() && p.cli().done(); }, "both sides to close");
  CHECK(p.srv().reason->clean());
}

TEST_CASE("abort inside data_received drops what was corked") {
  Pair p([](Record& r) {
    r.transport->write("first;");
    for (int i = 0; i < 100; ++i) r.transport->write("corked;");
    r.transport->abort_connection();
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().done() && p.srv().done(); },
      "both sides to close");
  CHECK(p.srv().reason->is(error::connection_aborted));
  // Every write of the call was corked, the first too: nothing left.
  CHECK(p.cli().received.empty());
  CHECK(p.reactor.connection_count() == 0);
}

namespace {
struct CountingProducer final : Producer {
  int paused = 0, resumed = 0, stopped = 0;
  void pause_producing() override { ++paused; }
  void resume_producing() override { ++resumed; }
  void stop_producing() override { ++stopped; }
};
}  // namespace

TEST_CASE("a streaming producer is paused by corked writes and resumed once they leave") {
  CountingProducer producer;
  int paused_inside = -1;
  Pair p([&](Record& r) {
    r.transport->set_write_buffer_limits(1000, 100);
    r.transport->register_producer(producer, /*streaming=*/true);
    for (int i = 0; i < 500; ++i) r.transport->write("0123456789");  // 5000 bytes, corked
    paused_inside = producer.paused;
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().received.size() == 5000; },
      "the corked bytes");
  CHECK(paused_inside == 1);     // the queue passed the high mark while corked
  CHECK(producer.resumed == 1);  // and drained below the low mark on uncork
  p.srv().transport->unregister_producer();
  p.cli().transport->lose_connection();
  wait_for(
      p.reactor, [&] { return p.srv().done() && p.cli().done(); }, "both sides to close");
  CHECK(producer.stopped == 0);
}

TEST_CASE("an exception in data_received after corked writes aborts; nothing corked leaves") {
  Pair p([](Record& r) {
    r.transport->write("first;");
    r.transport->write("corked;");
    throw std::runtime_error("boom");
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().done() && p.srv().done(); },
      "both sides to close");
  CHECK(p.srv().reason->is(error::callback_threw));
  CHECK(p.cli().received.empty());
}

// --- Corking outside data_received --------------------------------------------------
// Writes made in a call_soon batch, a timer, connection_made, a producer's
// resume_producing or another connection's callback: every write of the loop's turn, the
// first included, leaves in one send when the turn ends, before the loop has control again (see
// the top of transports/detail/stream_engine.hpp and framework/detail/turn.hpp).

namespace {

// A connected pair in one reactor, over TCP or a Unix socket; the server's
// connection_made runs `on_server_made`. The factories are declared before the reactor so
// that they outlive the connections it may still hold when it is destroyed.
struct Connected {
  enum class Kind { tcp, unix_socket };
  RecordingFactory server;
  RecordingClientFactory client;
  Reactor reactor;
  std::shared_ptr<ListeningPort> port;
  std::shared_ptr<Connector> connector;

  explicit Connected(Kind kind = Kind::tcp, std::function<void(Record&)> on_server_made = {}) {
    server.setup = [on_server_made](Record& r) { r.on_made = on_server_made; };
    if (kind == Kind::tcp) {
      TcpListenOptions options;
      options.interface = "127.0.0.1";
      port = listen_tcp(reactor, 0, server, options);
      connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
    } else {
      static int serial = 0;
      const std::string path = "@torsion-stream-transport-test-" + std::to_string(::getpid()) +
                               "-" + std::to_string(++serial);
      port = listen_unix(reactor, path, server);
      connector = connect_unix(reactor, path, client);
    }
    wait_for(
        reactor,
        [this] {
          return !server.records.empty() && server.records[0].made == 1 &&
                 !client.records.empty() && client.records[0].made == 1;
        },
        "both ends to connect");
  }
  Record& srv() { return server.records.at(0); }
  Record& cli() { return client.records.at(0); }
  Transport& out() { return *srv().transport; }  // the server's end, written to in tests
  std::uint64_t sends() { return write_calls(srv().transport); }

  bool received(std::size_t size) {
    return wait_for(
        reactor, [&] { return cli().received.size() >= size; }, "the client to receive it all");
  }
  // The client closes; both ends must hear it and no connection may be left.
  void close() {
    cli().transport->lose_connection();
    wait_for(
        reactor, [&] { return srv().done() && cli().done(); }, "both sides to close");
    CHECK(reactor.connection_count() == 0);
  }
};

// `count` chunks of `size` bytes, each with its own pattern; appended to `all` too.
std::vector<std::string> chunks(std::size_t count, std::size_t size, std::string& all,
                                std::size_t salt = 0) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(pattern(size, salt + i));
    all += out.back();
  }
  return out;
}

// Writes 1000 chunks of 32 bytes from the callback `schedule` hands its function to, and
// checks that they leave in one send once the callback has returned, and arrive whole and
// in order.
void thousand_writes_outside(Connected& c,
                             const std::function<void(std::function<void()>)>& schedule) {
  std::string expected;
  const auto parts = chunks(1000, 32, expected);
  std::uint64_t before = 0, during = 0;
  std::size_t queued = 0;
  schedule([&] {
    before = c.sends();
    for (const auto& part : parts) c.out().write(part);
    during = c.sends();
    queued = c.out().buffer_size();
  });
  REQUIRE(c.received(expected.size()));
  CHECK(during - before == 0);  // all corked, the first included
  CHECK(queued == expected.size());
  // The loopback kernel takes the 32,000 bytes in one sendmsg.
  CHECK(c.sends() - before == 1);
  CHECK(c.cli().received == expected);
  c.close();
}

}  // namespace

TEST_CASE("a thousand small writes from a call_soon callback leave in one send") {
  Connected c;
  thousand_writes_outside(c, [&](std::function<void()> fn) { c.reactor.call_soon(fn); });
}

TEST_CASE("a thousand small writes from a call_later callback leave in one send") {
  Connected c;
  thousand_writes_outside(c, [&](std::function<void()> fn) { c.reactor.call_later(0.001, fn); });
}

TEST_CASE("a thousand small writes over a Unix socket leave in one send") {
  Connected c(Connected::Kind::unix_socket);
  thousand_writes_outside(c, [&](std::function<void()> fn) { c.reactor.call_soon(fn); });
}

TEST_CASE("a lone write outside data_received costs one send when its turn ends, in every turn") {
  Connected c;
  std::uint64_t before = 0, during = 0;
  std::size_t queued = 1;
  auto lone = [&](const char* what) {
    before = c.sends();
    c.out().write(what);
    during = c.sends();  // read before the loop gets control back
    queued = c.out().buffer_size();
  };
  c.reactor.call_soon([&] { lone("one;"); });
  REQUIRE(c.received(4));
  CHECK(during - before == 0);
  CHECK(queued == 4);
  CHECK(c.sends() - before == 1);  // one send, and nothing more for it
  c.reactor.call_later(0.001, [&] { lone("two;"); });
  REQUIRE(c.received(8));
  CHECK(during - before == 0);
  CHECK(queued == 4);
  CHECK(c.sends() - before == 1);
  c.reactor.call_soon([&] { lone("three;"); });
  REQUIRE(c.received(14));
  CHECK(during - before == 0);
  CHECK(queued == 6);
  CHECK(c.sends() - before == 1);
  CHECK(c.cli().received == "one;two;three;");
  c.close();
}

TEST_CASE("writes made outside the loop are each sent at once: no turn would uncork them") {
  Connected c;
  const std::uint64_t before = c.sends();
  c.out().write("a;");
  c.out().write("b;");
  c.out().write(std::string("c;"));
  CHECK(c.sends() - before == 3);
  CHECK(c.out().buffer_size() == 0);
  REQUIRE(c.received(6));
  CHECK(c.cli().received == "a;b;c;");
  c.close();
}

TEST_CASE("writes from connection_made leave in one send") {
  std::string expected;
  const auto parts = chunks(100, 32, expected);
  std::uint64_t before = 0, during = 0;
  Connected c(Connected::Kind::tcp, [&](Record& r) {
    before = write_calls(r.transport);
    for (const auto& part : parts) r.transport->write(part);
    during = write_calls(r.transport);
  });
  REQUIRE(c.received(expected.size()));
  CHECK(during - before == 0);
  CHECK(c.sends() - before == 1);
  CHECK(c.cli().received == expected);
  c.close();
}

TEST_CASE("writes from another connection's data_received are corked per turn") {
  // The client's data_received writes to the server's end: outside that transport's own
  // delivery, inside the loop's turn for the client's read.
  Connected c;
  std::string expected = "go;";
  const auto parts = chunks(100, 32, expected);
  std::uint64_t before = 0, during = 0;
  c.cli().on_data = [&](Record&, std::string_view) {
    if (during != 0) return;
    before = c.sends();
    for (const auto& part : parts) c.out().write(part);
    during = c.sends();
  };
  c.out().write("go;");
  REQUIRE(c.received(expected.size()));
  CHECK(during - before == 0);
  CHECK(c.sends() - before == 1);
  CHECK(c.cli().received == expected);
  c.close();
}

TEST_CASE("writes corked outside data_received keep their order with every write path") {
  Connected c;
  const std::string big = pattern(300 * 1024, 7);  // more than the cork limit and the kernel takes
  const std::string owned(20 * 1024, 'L');
  const std::vector<std::string_view> parts{"p1;", "p2;", "p3;"};
  c.reactor.call_soon([&] {
    Transport& t = c.out();
    t.write("first;");
    t.write("second;");              // corked
    t.write(std::string("owned;"));  // corked behind it
    t.write_sequence(parts);         // queued behind it
    t.write(std::string_view(big));  // uncorks: what was corked leaves first
    t.write("after-big;");           // behind the big one
    t.write(std::string(owned));     // a large owned string, moved in behind
  });
  c.reactor.call_soon([&] { c.out().write("next-turn;"); });
  const std::string expected =
      "first;second;owned;p1;p2;p3;" + big + "after-big;" + owned + "next-turn;";
  REQUIRE(c.received(expected.size()));
  CHECK(c.cli().received == expected);
  c.close();
}

TEST_CASE("lose_connection after writes corked outside data_received delivers them, then closes") {
  Connected c;
  std::string expected;
  const auto parts = chunks(100, 16, expected);
  c.reactor.call_soon([&] {
    for (const auto& part : parts) c.out().write(part);
    c.out().lose_connection();
    c.out().write("dropped: written after lose_connection");
  });
  wait_for(
      c.reactor, [&] { return c.cli().done() && c.srv().done(); }, "both sides to close");
  CHECK(c.cli().received == expected);
  CHECK(c.cli().eofs == 1);
  CHECK(c.srv().reason->clean());
  CHECK(c.reactor.connection_count() == 0);
}

TEST_CASE("lose_write_connection after writes corked outside data_received sends them, then FIN") {
  Connected c;
  c.cli().keep_open_on_eof = true;
  std::string expected;
  const auto parts = chunks(100, 16, expected);
  c.reactor.call_soon([&] {
    for (const auto& part : parts) c.out().write(part);
    c.out().lose_write_connection();
  });
  wait_for(
      c.reactor, [&] { return c.cli().eofs == 1; }, "the client to hear end of file");
  CHECK(c.cli().received == expected);
  CHECK_FALSE(c.srv().done());  // the server still reads
  c.cli().transport->write("still heard");
  wait_for(
      c.reactor, [&] { return c.srv().received == "still heard"; }, "the server to read on");
  c.close();
  CHECK(c.srv().reason->clean());
}

TEST_CASE("abort after writes corked outside data_received drops them") {
  Connected c;
  std::size_t queued = 0;
  c.reactor.call_soon([&] {
    for (int i = 0; i < 100; ++i) c.out().write("corked;");
    queued = c.out().buffer_size();
    c.out().abort_connection();
  });
  wait_for(
      c.reactor, [&] { return c.cli().done() && c.srv().done(); }, "both sides to close");
  CHECK(queued == 700);
  CHECK(c.srv().reason->is(error::connection_aborted));
  CHECK(c.cli().received.find("corked;") == std::string::npos);
  CHECK(c.reactor.connection_count() == 0);
}

TEST_CASE("the peer resets the connection before the turn's uncork runs") {
  Connected c;
  std::size_t queued = 0;
  c.reactor.call_soon([&] {
    c.out().write("first;");
    for (int i = 0; i < 10; ++i) c.out().write("corked;");
    queued = c.out().buffer_size();
    c.cli().transport->abort_connection();  // an RST, before the server's end has noticed
  });
  wait_for(
      c.reactor, [&] { return c.cli().done() && c.srv().done(); }, "both sides to close");
  CHECK(queued == 76);
  CHECK(c.cli().reason->is(error::connection_aborted));
  CHECK(c.srv().lost == 1);
  CHECK_FALSE(c.srv().reason->clean());  // the uncork's send (or the read) failed
  CHECK(c.reactor.connection_count() == 0);
}

TEST_CASE("stop() in a turn with corked writes: they still leave when the turn ends") {
  std::size_t queued = 0, left = 1;
  std::uint64_t before = 0, after = 0;
  {
    Connected c;
    c.reactor.call_soon([&] {
      before = c.sends();
      c.out().write("first;");
      c.out().write("corked;");
      c.out().write("corked;");
      queued = c.out().buffer_size();
      c.reactor.stop();  // run_until returns once this turn is over
    });
    c.reactor.run_until([] { return false; }, 5);
    left = c.out().buffer_size();
    after = c.sends();
  }  // the reactor is destroyed with the transport idle (ASan)
  CHECK(queued == 20);
  CHECK(left == 0);
  CHECK(after - before == 1);
}

namespace {
// A pull producer that writes `per_call` chunks of 32 bytes in each resume_producing, for
// `calls` calls, then has nothing more to say.
struct ChunkProducer final : Producer {
  Transport* transport = nullptr;
  int calls = 0, max_calls = 0, per_call = 0, stopped = 0;
  std::string written;
  void pause_producing() override {}
  void resume_producing() override {
    if (calls == max_calls) return;  // done: not asked again until it writes
    ++calls;
    for (int i = 0; i < per_call; ++i) {
      std::string chunk = pattern(32, static_cast<std::size_t>(calls * per_call + i));
      written += chunk;
      transport->write(chunk);
    }
  }
  void stop_producing() override { ++stopped; }
};
}  // namespace

TEST_CASE("a pull producer writing many small chunks per resume_producing is corked per call") {
  Connected c;
  ChunkProducer producer;
  producer.transport = &c.out();
  producer.max_calls = 20;
  producer.per_call = 100;
  const std::uint64_t before = c.sends();
  c.out().register_producer(producer, /*streaming=*/false);
  REQUIRE(c.received(20 * 100 * 32));
  CHECK(producer.calls == 20);
  CHECK(c.cli().received == producer.written);
  // Each call: its 100 chunks in one send once it has returned.
  CHECK(c.sends() - before <= 20 + 2);
  c.out().unregister_producer();
  c.close();
  CHECK(producer.stopped == 0);
}

TEST_CASE("a streaming producer is paused by writes corked outside data_received") {
  Connected c;
  CountingProducer producer;
  int paused_inside = -1;
  c.reactor.call_soon([&] {
    c.out().set_write_buffer_limits(1000, 100);
    c.out().register_producer(producer, /*streaming=*/true);
    for (int i = 0; i < 500; ++i) c.out().write("0123456789");  // 5000 bytes, corked
    paused_inside = producer.paused;
  });
  REQUIRE(c.received(5000));
  CHECK(paused_inside == 1);     // the queue passed the high mark while corked
  CHECK(producer.resumed == 1);  // and drained below the low mark on uncork
  c.out().unregister_producer();
  c.close();
  CHECK(producer.stopped == 0);
}

// --- Lean reading --------------------------------------------------------------------
// Reads go into a buffer the reactor's thread lends (transports/detail/read_buffer.hpp):
// a connection owns no read memory, idle or after a burst.

TEST_CASE("two connections' reads are delivered from the same lent buffer") {
  Connected a;
  Connected b;  // a reactor of its own, on the same thread: the buffer is the thread's
  const char* seen_a = nullptr;
  const char* seen_b = nullptr;
  a.srv().on_data = [&](Record&, std::string_view data) { seen_a = data.data(); };
  b.srv().on_data = [&](Record&, std::string_view data) { seen_b = data.data(); };
  a.cli().transport->write("to a");
  b.cli().transport->write("to b, then a burst: " + pattern(300 * 1024, 3));
  wait_for(
      a.reactor, [&] { return a.srv().received == "to a"; }, "a to read");
  wait_for(
      b.reactor, [&] { return b.srv().received.size() == 20 + 300 * 1024; }, "b to read");
  REQUIRE(seen_a != nullptr);
  REQUIRE(seen_b != nullptr);
  CHECK(seen_a == seen_b);
  CHECK(b.srv().received == "to b, then a burst: " + pattern(300 * 1024, 3));
  a.close();
  b.close();
}
