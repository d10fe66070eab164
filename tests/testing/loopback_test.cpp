#include "framework/testing/loopback.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "tests/support/recording.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::Recording;
using torsion::testing::Loopback;
using torsion::testing::LoopbackOptions;

namespace {

// A pattern that shows reordering or loss: byte i is a function of i.
std::string pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// Two recorded protocols over a loopback.
struct Pair {
  Record client, server;
  std::unique_ptr<Loopback> loop;
  explicit Pair(LoopbackOptions options = {}) : options_(std::move(options)) {}
  Loopback& connect() {
    loop = std::make_unique<Loopback>(std::make_unique<Recording>(client),
                                      std::make_unique<Recording>(server), options_);
    return *loop;
  }

 private:
  LoopbackOptions options_;
};

bool is_reset(const Reason& r) {
  return r.is(error::connection_lost) && r.cause() == std::errc::connection_reset;
}

// Splits input into '\n'-terminated lines, whatever the chunks.
struct LineCollector : Protocol {
  std::string buffer;
  std::vector<std::string> lines;
  std::vector<std::size_t> chunks;
  void data_received(std::string_view d) override {
    chunks.push_back(d.size());
    buffer.append(d);
    for (std::size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      lines.push_back(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
  }
};

struct Sender : Protocol {
  std::string payload;
  void connection_made() override {
    transport().write(payload);
    transport().lose_connection();
  }
};

struct CountingProducer : Producer {
  int pauses = 0, resumes = 0, stops = 0;
  std::function<void()> on_resume;
  void pause_producing() override { ++pauses; }
  void resume_producing() override {
    ++resumes;
    if (on_resume) on_resume();
  }
  void stop_producing() override { ++stops; }
};

}  // namespace

TEST_CASE("echo over the loopback, then a clean close on both sides") {
  Pair p;
  p.server.on_data = [](Record& r, std::string_view d) { r.transport->write(d); };
  p.client.on_made = [](Record& r) { r.transport->write("hello"); };
  Loopback& loop = p.connect();
  CHECK(p.server.made == 1);
  CHECK(p.client.made == 1);
  CHECK(p.server.received.empty());  // nothing moves until the pump
  CHECK(loop.pump());
  CHECK(p.server.received == "hello");
  CHECK(p.client.received == "hello");
  CHECK_FALSE(loop.pump());  // quiet
  p.client.transport->lose_connection();
  loop.pump();
  CHECK(loop.finished());
  CHECK(p.server.eofs == 1);
  CHECK(p.client.reason->clean());
  CHECK(p.server.reason->clean());
  CHECK(loop.client_transport().lost());
  CHECK(loop.server_transport().reason()->clean());
}

TEST_CASE("connection_made: the server hears first, and addresses match") {
  std::string order;
  Pair p;
  p.server.on_made = [&](Record&) { order += 's'; };
  p.client.on_made = [&](Record&) { order += 'c'; };
  LoopbackOptions o;
  o.client_address = Address::ip("10.0.0.1", 4000);
  o.server_address = Address::ip("10.0.0.2", 80);
  Pair q(o);
  Loopback& loop = q.connect();
  p.connect();
  CHECK(order == "sc");
  CHECK(loop.client_transport().get_peer() == o.server_address);
  CHECK(loop.client_transport().get_host() == o.client_address);
  CHECK(loop.server_transport().get_peer() == o.client_address);
  CHECK(loop.server_transport().get_host() == o.server_address);
  CHECK(loop.client_transport().native_handle() == -1);
}

TEST_CASE("framing sees the same lines at every chunk size") {
  std::string text;
  for (int i = 0; i < 50; ++i)
    text += "line " + std::to_string(i) + " " + pattern(static_cast<std::size_t>(i)) + "\n";
  for (std::size_t size = 1; size <= 12; ++size) {
    CAPTURE(size);
    Sender sender;
    sender.payload = text;
    LineCollector lines;
    LoopbackOptions o;
    o.chunk_size = size;
    Loopback loop(sender, lines, o);
    loop.pump();
    CHECK(loop.finished());
    REQUIRE(lines.lines.size() == 50);
    CHECK(lines.lines[49] == "line 49 " + pattern(49));
    for (std::size_t i = 0; i + 1 < lines.chunks.size(); ++i) CHECK(lines.chunks[i] == size);
  }
}

TEST_CASE("one_byte chunks deliver every byte alone") {
  Sender sender;
  sender.payload = "a\nbc\n";
  LineCollector lines;
  Loopback loop(sender, lines, LoopbackOptions::one_byte());
  loop.pump();
  CHECK(lines.chunks == std::vector<std::size_t>(5, 1));
  CHECK(lines.lines == std::vector<std::string>{"a", "bc"});
}

TEST_CASE("random chunk sizes are reproducible from the seed") {
  auto splits = [](std::uint32_t seed) {
    Sender sender;
    sender.payload = pattern(5000) + "\n";
    LineCollector lines;
    Loopback loop(sender, lines, LoopbackOptions::random_chunks(seed, 17));
    loop.pump();
    CHECK(lines.lines.size() == 1);
    CHECK(lines.lines[0] == pattern(5000));
    return lines.chunks;
  };
  const auto a = splits(7), b = splits(7), c = splits(8);
  CHECK(a == b);
  CHECK(a != c);
  std::size_t smallest = 1000, largest = 0;
  for (std::size_t n : a) smallest = std::min(smallest, n), largest = std::max(largest, n);
  CHECK(smallest == 1);
  CHECK(largest == 17);
}

TEST_CASE("lose_connection from the server: the client reads everything, then EOF") {
  Pair p(LoopbackOptions::one_byte());
  p.server.on_made = [](Record& r) {
    r.transport->write("bye");
    r.transport->lose_connection();
    r.transport->write("dropped");
  };
  Loopback& loop = p.connect();
  CHECK_FALSE(loop.server_transport().connected());
  loop.pump();
  CHECK(p.client.received == "bye");
  CHECK(p.client.eofs == 1);
  CHECK(p.client.lost == 1);
  CHECK(p.server.lost == 1);
  CHECK(p.client.reason->clean());
  CHECK(p.server.reason->clean());
}

TEST_CASE("lose_in_data_received: reading stops at once") {
  Pair p(LoopbackOptions::one_byte());
  p.client.on_made = [](Record& r) { r.transport->write("abc"); };
  p.server.on_data = [](Record& r, std::string_view) { r.transport->lose_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.received == "a");
  CHECK(loop.finished());
  CHECK(p.server.reason->clean());
  // The server closed with "bc" unread: TCP answers with a reset, but the client has
  // closed its side on the EOF first, so it ends cleanly.
  CHECK(p.client.eofs == 1);
  CHECK(p.client.reason->clean());
}

TEST_CASE("closing with unread input resets a half-open peer at its next write") {
  Pair p;
  p.client.keep_open_on_eof = true;
  p.client.on_made = [](Record& r) { r.transport->write("unread"); };
  p.server.on_made = [](Record& r) { r.transport->lose_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.received.empty());
  CHECK(p.server.reason->clean());
  CHECK(p.client.eofs == 1);
  CHECK(p.client.lost == 0);  // it reads no more after the EOF: the reset is not seen yet
  p.client.transport->write("hello?");
  loop.pump();
  REQUIRE(p.client.lost == 1);
  CHECK(p.client.reason->is(error::connection_lost));
  CHECK(p.client.reason->cause().value() == EPIPE);
}

TEST_CASE("abort_connection: aborted here, reset there, in-flight data lost") {
  Pair p;
  p.client.on_made = [](Record& r) {
    r.transport->write("never seen");
    r.transport->abort_connection();
    r.transport->abort_connection();
  };
  Loopback& loop = p.connect();
  CHECK_FALSE(loop.client_transport().connected());
  CHECK(p.client.lost == 0);  // connection_lost comes from the pump
  loop.pump();
  CHECK(p.server.received.empty());
  CHECK(p.client.reason->is(error::connection_aborted));
  REQUIRE(p.server.lost == 1);
  CHECK(is_reset(*p.server.reason));
  CHECK(p.server.reason->cause().value() == ECONNRESET);
  CHECK(p.server.eofs == 0);
}

TEST_CASE("abort overrides a pending lose_connection") {
  Pair p;
  p.server.on_made = [](Record& r) { r.transport->pause_producing(); };
  p.client.on_made = [](Record& r) {
    r.transport->write("x");
    r.transport->lose_connection();
    r.transport->abort_connection();
  };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.client.reason->is(error::connection_aborted));
  CHECK(p.server.lost == 0);  // paused: it notices the reset when it reads again
  loop.server_transport().resume_producing();
  loop.pump();
  CHECK(is_reset(*p.server.reason));
  CHECK(p.server.received.empty());
}

TEST_CASE("half close: eof_received keeps the connection open for writing") {
  Pair p(LoopbackOptions::one_byte());
  p.server.keep_open_on_eof = true;
  p.client.on_made = [](Record& r) {
    r.transport->write("request");
    r.transport->lose_write_connection();
    r.transport->write("dropped");
  };
  Loopback& loop = p.connect();
  CHECK(loop.client_transport().connected());
  loop.pump();
  CHECK(p.server.received == "request");
  CHECK(p.server.eofs == 1);
  CHECK(p.server.lost == 0);
  CHECK(p.client.lost == 0);
  p.server.transport->write("response after EOF");
  p.server.transport->lose_connection();
  loop.pump();
  CHECK(p.client.received == "response after EOF");
  CHECK(p.client.eofs == 1);  // told, but its write side was shut: both directions are done
  CHECK(p.client.reason->clean());
  CHECK(p.server.reason->clean());
}

TEST_CASE("both sides shut their write sides: a clean close") {
  Pair p;
  p.server.keep_open_on_eof = true;
  p.client.on_made = [](Record& r) { r.transport->lose_write_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.eofs == 1);
  p.server.transport->write("last");
  p.server.transport->lose_write_connection();  // after the peer's EOF: closes
  loop.pump();
  CHECK(loop.finished());
  CHECK(p.client.received == "last");
  CHECK(p.client.reason->clean());
  CHECK(p.server.reason->clean());
}

TEST_CASE("a half-open peer that writes to a closed side is reset, as TCP does") {
  Pair p;
  p.client.keep_open_on_eof = true;
  p.server.on_made = [](Record& r) { r.transport->lose_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.reason->clean());
  CHECK(p.client.eofs == 1);
  CHECK(p.client.lost == 0);
  p.client.transport->write("anyone there?");  // succeeds, and the peer answers RST
  loop.pump();
  CHECK(p.client.lost == 0);
  p.client.transport->write("hello?");  // fails: EPIPE
  loop.pump();
  REQUIRE(p.client.lost == 1);
  CHECK(p.client.reason->is(error::connection_lost));
  CHECK(p.client.reason->cause().value() == EPIPE);
}

TEST_CASE("a half-open peer that closes after a reset ends cleanly") {
  Pair p;
  p.client.keep_open_on_eof = true;
  p.server.on_made = [](Record& r) { r.transport->lose_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  p.client.transport->write("anyone there?");
  loop.pump();
  p.client.transport->lose_connection();
  loop.pump();
  CHECK(p.client.reason->clean());
}

TEST_CASE("a paused peer notices an abort when it writes") {
  Pair p;
  p.server.on_made = [](Record& r) { r.transport->pause_producing(); };
  p.client.on_made = [](Record& r) { r.transport->abort_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.lost == 0);
  p.server.transport->write("x");
  loop.pump();
  REQUIRE(p.server.lost == 1);
  CHECK(is_reset(*p.server.reason));
}

TEST_CASE("pause_producing holds data and EOF back; resume delivers them in order") {
  // The deterministic version of the TCP test of the same name: no 50 ms wait.
  Pair p;
  p.server.on_made = [](Record& r) {
    r.transport->pause_producing();
    r.transport->pause_producing();
  };
  p.client.on_made = [](Record& r) {
    r.transport->write("one,");
    r.transport->write("two,");
    r.transport->lose_write_connection();
  };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(loop.server_transport().reading_paused());
  CHECK(p.server.received.empty());
  CHECK(p.server.eofs == 0);
  CHECK(p.server.lost == 0);
  CHECK(loop.in_flight_to_server() == 8);
  loop.server_transport().resume_producing();
  loop.server_transport().resume_producing();
  CHECK(p.server.received.empty());  // resume never calls back from inside itself
  loop.pump();
  CHECK(p.server.received == "one,two,");
  CHECK(p.server.eofs == 1);
  CHECK(p.server.reason->clean());
  CHECK(p.client.reason->clean());
}

TEST_CASE("pause_in_data_received stops delivery to that side only") {
  Pair p(LoopbackOptions::one_byte());
  p.server.on_data = [](Record& r, std::string_view) { r.transport->pause_producing(); };
  p.client.on_data = [](Record&, std::string_view) {};
  p.client.on_made = [](Record& r) { r.transport->write("xyz"); };
  p.server.on_made = [](Record& r) { r.transport->write("123"); };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.received == "x");
  CHECK(p.client.received == "123");
  loop.server_transport().resume_producing();
  loop.pump();
  CHECK(p.server.received == "xy");
}

TEST_CASE("a paused reader pushes back on the writer's streaming producer") {
  LoopbackOptions o;
  o.wire_capacity = 1000;
  Pair p(o);
  p.server.on_made = [](Record& r) { r.transport->pause_producing(); };
  Loopback& loop = p.connect();
  Transport& writer = loop.client_transport();
  writer.set_write_buffer_limits(3000, 1000);
  CountingProducer producer;
  writer.register_producer(producer, true);
  writer.write(pattern(3000));
  CHECK(producer.pauses == 0);
  loop.pump();
  CHECK(loop.in_flight_to_server() == 1000);  // the wire is full
  CHECK(writer.buffer_size() == 2000);
  writer.write(pattern(5000).substr(3000));  // above the high mark: paused from write
  CHECK(producer.pauses == 1);
  CHECK(loop.client_transport().producer_paused());
  loop.pump();
  CHECK(producer.resumes == 0);  // nothing moves while the reader is paused
  loop.server_transport().resume_producing();
  loop.pump();
  CHECK(producer.resumes == 1);
  CHECK(p.server.received == pattern(5000));
  CHECK(writer.buffer_size() == 0);
  writer.lose_connection();
  loop.pump();
  CHECK(producer.stops == 1);
  CHECK(loop.finished());
}

TEST_CASE("a pull producer is asked for more whenever the buffer is empty") {
  Pair p(LoopbackOptions::one_byte());
  Loopback& loop = p.connect();
  Transport& t = loop.client_transport();
  CountingProducer producer;
  int chunks = 0;
  producer.on_resume = [&] {
    if (++chunks <= 5) {
      t.write("chunk" + std::to_string(chunks) + ";");
    } else {
      t.unregister_producer();
      t.lose_connection();
    }
  };
  t.register_producer(producer, false);
  CHECK(producer.resumes == 0);  // from the pump, not from inside register_producer
  loop.pump();
  CHECK(p.server.received == "chunk1;chunk2;chunk3;chunk4;chunk5;");
  CHECK(producer.resumes == 6);
  CHECK(producer.stops == 0);  // it unregistered
  CHECK(loop.finished());
}

TEST_CASE("a pull producer with nothing to say is asked once, not spun on") {
  Pair p;
  Loopback& loop = p.connect();
  Transport& t = loop.client_transport();
  CountingProducer idle;
  t.register_producer(idle, false);
  loop.pump();
  CHECK(idle.resumes == 1);
  loop.pump();
  CHECK(idle.resumes == 1);
  t.write("now it wrote");  // once that has moved, it is asked again
  loop.pump();
  CHECK(idle.resumes == 2);
  t.lose_write_connection();
  t.unregister_producer();
  CountingProducer late;
  t.register_producer(late, false);
  loop.pump();
  CHECK(late.resumes == 0);  // never resumed after lose_write_connection
}

TEST_CASE("protocols that answer each other forever make pump() fail clearly") {
  LoopbackOptions o;
  o.max_steps = 100;
  Pair p(o);
  auto answer = [](Record& r, std::string_view d) { r.transport->write(d); };
  p.client.on_data = answer;
  p.server.on_data = answer;
  p.client.on_made = [](Record& r) { r.transport->write("ping"); };
  Loopback& loop = p.connect();
  CHECK_THROWS_WITH_AS(loop.pump(), doctest::Contains("still busy after 100 steps"),
                       std::runtime_error);
}

TEST_CASE("register_producer after the end stops the producer at once") {
  Pair p;
  p.client.on_made = [](Record& r) { r.transport->abort_connection(); };
  Loopback& loop = p.connect();
  loop.pump();
  CountingProducer late;
  loop.client_transport().register_producer(late, true);
  CHECK(late.stops == 1);
  CHECK(loop.client_transport().producer() == nullptr);
  CountingProducer a, b;
  loop.server_transport().register_producer(a, true);  // closed too: stopped
  CHECK(a.stops == 1);
}

TEST_CASE("water marks: bad limits are a clear error, a second producer too") {
  Pair p;
  Loopback& loop = p.connect();
  CHECK_THROWS_WITH_AS(loop.client_transport().set_write_buffer_limits(1, 2),
                       doctest::Contains("low (2)"), std::invalid_argument);
  CountingProducer a, b;
  loop.client_transport().register_producer(a, true);
  CHECK_THROWS_AS(loop.client_transport().register_producer(b, true), std::logic_error);
}

TEST_CASE("an exception in a callback aborts that side only and resets the peer") {
  std::vector<std::string> logged;
  set_log_sink([&](LogLevel, std::string_view m) { logged.emplace_back(m); });
  Pair p;
  p.server.on_data = [](Record&, std::string_view) { throw std::runtime_error("protocol bug"); };
  p.client.on_made = [](Record& r) { r.transport->write("boom"); };
  Loopback& loop = p.connect();
  loop.pump();
  set_log_sink(nullptr);
  REQUIRE(p.server.lost == 1);
  CHECK(p.server.reason->is(error::callback_threw));
  CHECK(p.server.reason->exception() != nullptr);
  REQUIRE(p.client.lost == 1);
  CHECK(is_reset(*p.client.reason));
  REQUIRE_FALSE(logged.empty());
  CHECK(logged[0].find("protocol bug") != std::string::npos);
  CHECK(logged[0].find("127.0.0.1") != std::string::npos);
}

TEST_CASE("pump from inside a callback is a programming error") {
  std::unique_ptr<Loopback> loop;
  set_log_sink([](LogLevel, std::string_view) {});
  Pair p;
  p.client.on_made = [](Record& r) { r.transport->write("x"); };
  p.server.on_data = [&](Record&, std::string_view) { loop->pump(); };
  Loopback& l = p.connect();
  loop = std::move(p.loop);
  l.pump();
  set_log_sink(nullptr);
  CHECK(p.server.reason->is(error::callback_threw));
  CHECK(p.server.reason->message().find("inside a callback") != std::string::npos);
}

TEST_CASE("a large transfer in both directions arrives whole and in order") {
  const std::string up = pattern(300000), down = pattern(200000);
  Pair p(LoopbackOptions::random_chunks(42, 4096));
  p.client.on_made = [&](Record& r) {
    r.transport->write(std::string(up));
    r.transport->lose_write_connection();
  };
  p.server.keep_open_on_eof = true;
  p.server.on_made = [&](Record& r) { r.transport->write(down); };
  p.server.on_lost = [](Record&) {};
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.server.received == up);
  CHECK(p.client.received == down);
  p.server.transport->lose_connection();
  loop.pump();
  CHECK(loop.finished());
  CHECK(p.client.reason->clean());
  CHECK(p.server.reason->clean());
}

TEST_CASE("null protocols and a zero wire capacity are rejected") {
  CHECK_THROWS_AS(Loopback(nullptr, std::make_unique<Protocol>()), std::invalid_argument);
  Protocol a, b;
  LoopbackOptions o;
  o.wire_capacity = 0;
  CHECK_THROWS_AS(Loopback(a, b, o), std::invalid_argument);
}

TEST_CASE("lose_connection waits for a paused peer to take the bytes beyond the wire") {
  LoopbackOptions o;
  o.wire_capacity = 10;
  Pair p(o);
  p.server.on_made = [](Record& r) { r.transport->pause_producing(); };
  p.client.on_made = [](Record& r) {
    r.transport->write(pattern(25));
    r.transport->lose_connection();
  };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(p.client.lost == 0);  // 15 bytes cannot move yet: still closing
  CHECK(loop.client_transport().buffer_size() == 15);
  CHECK(loop.in_flight_to_server() == 10);
  loop.server_transport().resume_producing();
  loop.pump();
  CHECK(p.server.received == pattern(25));
  CHECK(loop.finished());
  CHECK(p.client.reason->clean());
  CHECK(p.server.reason->clean());
}

TEST_CASE("exceptions in eof_received and producers abort; in connection_lost they are logged") {
  std::vector<std::string> logged;
  set_log_sink([&](LogLevel, std::string_view m) { logged.emplace_back(m); });
  struct Thrower : Protocol {
    int lost = 0;
    std::optional<Reason> reason;
    bool eof_received() override { throw std::runtime_error("eof bug"); }
    void connection_lost(const Reason& r) override {
      ++lost;
      reason = r;
      throw std::runtime_error("lost bug");
    }
  };
  Thrower server;
  Sender client;
  client.payload = "x";
  Loopback loop(client, server);
  loop.pump();
  CHECK(server.lost == 1);
  CHECK(server.reason->is(error::callback_threw));
  CHECK(server.reason->message().find("eof_received") != std::string::npos);
  CHECK(loop.finished());

  Pair p;
  Loopback& l2 = p.connect();
  CountingProducer bad;
  bad.on_resume = [] { throw std::runtime_error("producer bug"); };
  l2.client_transport().register_producer(bad, false);
  l2.pump();
  set_log_sink(nullptr);
  CHECK(p.client.reason->is(error::callback_threw));
  CHECK(bad.stops == 1);
  CHECK(is_reset(*p.server.reason));
  bool saw_lost_bug = false;
  for (auto& m : logged) saw_lost_bug = saw_lost_bug || m.find("lost bug") != std::string::npos;
  CHECK(saw_lost_bug);
}

TEST_CASE("an exception in connection_made aborts that side") {
  set_log_sink([](LogLevel, std::string_view) {});
  struct BadStart : Protocol {
    void connection_made() override { throw std::runtime_error("start bug"); }
  };
  BadStart server;
  Record client_record;
  Recording client(client_record);
  Loopback loop(client, server);
  CHECK_FALSE(loop.server_transport().connected());
  loop.pump();
  set_log_sink(nullptr);
  CHECK(loop.server_transport().reason()->is(error::callback_threw));
  CHECK(loop.server_transport().lost());
  REQUIRE(client_record.lost == 1);
  CHECK(is_reset(*client_record.reason));
}

TEST_CASE("a streaming producer: resumed at the low mark, quiet once closing") {
  Pair p;
  Loopback& loop = p.connect();
  Transport& t = loop.client_transport();
  t.set_write_buffer_limits(8, 2);
  CountingProducer producer;
  t.write("0123456789");  // above the high mark before registration
  t.register_producer(producer, true);
  CHECK(producer.pauses == 1);  // starts paused
  loop.pump();
  CHECK(producer.resumes == 1);
  t.write("0123456789");
  CHECK(producer.pauses == 2);
  t.lose_connection();
  loop.pump();
  CHECK(producer.resumes == 1);  // no resume once closing
  CHECK(producer.stops == 1);
  CHECK(p.server.received == "01234567890123456789");
}

TEST_CASE("an echo to a loopback peer that does not read stops reading at the high mark") {
  LoopbackOptions options;
  options.wire_capacity = 1000;
  Pair p(options);
  std::size_t max_buffer = 0;
  int entered_above_high = 0;
  p.server.on_made = [](Record& r) { r.transport->set_write_buffer_limits(2000, 500); };
  p.server.on_data = [&](Record& r, std::string_view d) {
    if (r.transport->buffer_size() > 2000) ++entered_above_high;
    r.transport->write(d);
    max_buffer = std::max(max_buffer, r.transport->buffer_size());
  };
  const std::string payload = pattern(100'000);
  p.client.on_made = [&](Record& r) {
    r.transport->pause_producing();
    r.transport->write(payload);
  };
  Loopback& loop = p.connect();
  loop.pump();
  CHECK(loop.server_transport().pauses_reading_when_full());
  CHECK(p.client.received.empty());
  CHECK(p.server.received.size() < payload.size());  // it stopped reading
  CHECK(loop.server_transport().buffer_size() > 2000);
  loop.client_transport().resume_producing();
  loop.pump();
  CHECK(p.client.received == payload);
  CHECK(entered_above_high == 0);
  CHECK(max_buffer <= 2000 + 1000);  // the high mark plus one delivery
}
