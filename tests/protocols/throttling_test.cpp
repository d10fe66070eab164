#include "protocols/throttling.hpp"

#include <doctest/doctest.h>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/wire.hpp"
#include "tests/support/recording.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::RecordingFactory;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;

namespace {

struct Conn {
  std::unique_ptr<Protocol> protocol;
  StringTransport transport;
};

std::unique_ptr<Conn> open(Factory& factory, int n) {
  auto c = std::make_unique<Conn>();
  c->protocol = factory.build_protocol(Address::ip("10.0.0." + std::to_string(n), 1000));
  REQUIRE(c->protocol);
  c->transport.connect(*c->protocol);
  return c;
}

struct CountingProducer : Producer {
  int pauses = 0, resumes = 0, stops = 0;
  bool paused = false;
  void pause_producing() override {
    ++pauses;
    paused = true;
  }
  void resume_producing() override {
    ++resumes;
    paused = false;
  }
  void stop_producing() override { ++stops; }
};

}  // namespace

TEST_CASE("reads over the limit pause every connection until the bucket refills") {
  ManualClock clock;
  RecordingFactory inner;
  ThrottlingFactory factory(inner, clock, {.read_bytes_per_second = 1000});
  auto a = open(factory, 1);
  auto b = open(factory, 2);
  a->protocol->data_received(std::string(600, 'a'));
  CHECK_FALSE(factory.reads_throttled());  // a full bucket allows one second's worth
  b->protocol->data_received(std::string(900, 'b'));
  CHECK(factory.reads_throttled());  // 1500 bytes: 500 over
  CHECK(a->transport.reading_paused());
  CHECK(b->transport.reading_paused());
  CHECK(inner.records[1].received.size() == 900);  // what was read is still delivered
  auto c = open(factory, 3);
  CHECK(c->transport.reading_paused());  // a new connection starts throttled
  clock.advance(0.49);
  CHECK(a->transport.reading_paused());
  clock.advance(0.01);
  CHECK_FALSE(factory.reads_throttled());
  CHECK_FALSE(a->transport.reading_paused());
  CHECK_FALSE(b->transport.reading_paused());
  CHECK_FALSE(c->transport.reading_paused());
  CHECK(factory.total_read() == 1500);
}

TEST_CASE("a protocol that paused its own transport stays paused after unthrottling") {
  ManualClock clock;
  RecordingFactory inner;
  ThrottlingFactory factory(inner, clock, {.read_bytes_per_second = 100});
  auto a = open(factory, 1);
  inner.records[0].transport->pause_producing();
  CHECK(a->transport.reading_paused());
  a->protocol->data_received(std::string(300, 'x'));
  CHECK(factory.reads_throttled());
  clock.advance(10);
  CHECK_FALSE(factory.reads_throttled());
  CHECK(a->transport.reading_paused());
  inner.records[0].transport->resume_producing();
  CHECK_FALSE(a->transport.reading_paused());
}

TEST_CASE("a throttled write rate holds back a pull producer (Chargen)") {
  ManualClock clock;
  auto chargen = make_factory<Chargen>();
  const std::size_t limit = 20000;
  ThrottlingFactory factory(chargen, clock, {.write_bytes_per_second = limit});
  auto c = std::make_unique<Conn>();
  c->transport.set_buffering(true);
  c->protocol = factory.build_protocol(Address::ip("10.0.0.1", 1));
  c->transport.connect(*c->protocol);
  // A reader that drains everything every 10 ms for 10 seconds.
  for (int step = 0; step < 1000; ++step) {
    c->transport.drain();
    clock.advance(0.01);
  }
  const std::size_t sent = c->transport.value().size() + c->transport.buffer_size();
  const std::size_t chunk = Chargen::kLinesPerChunk * Chargen::kLineSize;
  CHECK(sent <= limit * 11 + chunk);  // the limit, plus one second of burst, plus a chunk
  CHECK(sent >= limit * 9);           // and it is not starved either
  CHECK(factory.total_written() == sent);
  c->transport.disconnect();
}

TEST_CASE("a streaming producer is paused by the throttle and by flow control, together") {
  ManualClock clock;
  RecordingFactory inner;
  ThrottlingFactory factory(inner, clock, {.write_bytes_per_second = 100});
  auto c = std::make_unique<Conn>();
  c->transport.set_buffering(true);
  c->transport.set_write_buffer_limits(50, 10);
  c->protocol = factory.build_protocol(Address::ip("10.0.0.1", 1));
  c->transport.connect(*c->protocol);
  Transport& t = *inner.records[0].transport;
  CountingProducer producer;
  t.register_producer(producer, true);
  CHECK(c->transport.producer() != nullptr);
  t.write(std::string(60, 'x'));  // above the high mark (flow control), within the rate
  CHECK(producer.paused);
  CHECK_FALSE(factory.writes_throttled());
  t.write(std::string(60, 'y'));  // 120 bytes: now over the rate too
  CHECK(factory.writes_throttled());
  c->transport.drain();  // flow control resumes, but the throttle still holds it
  CHECK(producer.paused);
  clock.advance(0.2);  // 20 bytes over: unthrottled after 0.2 s
  CHECK_FALSE(factory.writes_throttled());
  CHECK_FALSE(producer.paused);
  c->transport.disconnect();
  CHECK(producer.stops == 1);
}
