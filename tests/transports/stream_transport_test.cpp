#include "transports/detail/stream_transport.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

// Corking: writes made inside data_received leave together when it returns, in order with
// every other write (see the top of transports/detail/stream_transport.hpp).

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

TEST_CASE("a thousand small writes inside one data_received leave in two sends") {
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
  // The first write is sent at once, the other 999 in one gathered send after data_received.
  CHECK(after - before == 2);
  CHECK(p.cli().received == expected);
  p.cli().transport->lose_connection();
  wait_for(
      p.reactor, [&] { return p.srv().done() && p.cli().done(); }, "both sides to close");
  CHECK(p.reactor.connection_count() == 0);
}

TEST_CASE("one write per data_received is sent at once, not corked") {
  std::uint64_t before = 0, during = 0;
  Pair p([&](Record& r) {
    before = write_calls(r.transport);
    r.transport->write("answer");
    during = write_calls(r.transport);
    CHECK(r.transport->buffer_size() == 0);  // the kernel has it already
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().received == "answer"; },
      "the answer");
  CHECK(during - before == 1);
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
    r.transport->write("sent at once;");
    for (int i = 0; i < 100; ++i) r.transport->write("corked;");
    r.transport->abort_connection();
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().done() && p.srv().done(); },
      "both sides to close");
  CHECK(p.srv().reason->is(error::connection_aborted));
  // The first write had left already; nothing corked followed it.
  CHECK(p.cli().received.find("corked;") == std::string::npos);
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
    r.transport->write("sent at once;");
    r.transport->write("corked;");
    throw std::runtime_error("boom");
  });
  wait_for(
      p.reactor, [&] { return !p.client.records.empty() && p.cli().done() && p.srv().done(); },
      "both sides to close");
  CHECK(p.srv().reason->is(error::callback_threw));
  CHECK(p.cli().received.find("corked;") == std::string::npos);
}
