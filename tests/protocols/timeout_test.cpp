#include "protocols/timeout.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/line_receiver.hpp"
#include "tests/protocols/splitting.hpp"
#include "tests/support/recording.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::Recording;
using torsion::test::RecordingFactory;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;

namespace {

class Idle : public Protocol, public TimeoutMixin {
 public:
  explicit Idle(Scheduler& s) : TimeoutMixin(s, *this) {}
  int timeouts = 0;
  bool custom = false;
  void connection_made() override { set_timeout(10); }
  void data_received(std::string_view) override { reset_timeout(); }
  void connection_lost(const Reason&) override { set_timeout(std::nullopt); }

 protected:
  void timeout_connection() override {
    ++timeouts;
    if (!custom) TimeoutMixin::timeout_connection();
  }
};

}  // namespace

TEST_CASE("TimeoutMixin aborts an idle connection after the period") {
  ManualClock clock;
  StringTransport t;
  Idle p(clock);
  t.connect(p);
  CHECK(p.timeout_period() == 10);
  clock.advance(9.9);
  CHECK(p.timeouts == 0);
  CHECK(t.connected());
  clock.advance(0.1);
  CHECK(p.timeouts == 1);
  CHECK(t.aborted());
  CHECK_FALSE(p.timeout_period());
  clock.advance(100);
  CHECK(p.timeouts == 1);  // fires once
}

TEST_CASE("activity resets the countdown") {
  ManualClock clock;
  StringTransport t;
  Idle p(clock);
  t.connect(p);
  for (int i = 0; i < 10; ++i) {
    clock.advance(9);
    p.data_received("x");
  }
  CHECK(p.timeouts == 0);
  clock.advance(10);
  CHECK(p.timeouts == 1);
}

TEST_CASE("set_timeout replaces or cancels the countdown") {
  ManualClock clock;
  StringTransport t;
  Idle p(clock);
  p.custom = true;
  t.connect(p);
  CHECK(p.set_timeout(3) == 10);
  clock.advance(3);
  CHECK(p.timeouts == 1);
  CHECK(t.connected());  // the override did not close
  p.set_timeout(5);
  CHECK(p.set_timeout(std::nullopt) == 5);
  p.reset_timeout();  // harmless with no countdown
  clock.advance(60);
  CHECK(p.timeouts == 1);
  CHECK(clock.pending_count() == 0);
  CHECK_THROWS_AS(p.set_timeout(-1), std::invalid_argument);
}

TEST_CASE("destroying the protocol cancels its timer") {
  ManualClock clock;
  {
    StringTransport t;
    Idle p(clock);
    t.connect(p);
    CHECK(clock.pending_count() == 1);
  }
  CHECK(clock.pending_count() == 0);
  clock.advance(20);  // nothing runs on freed memory (ASan would say)
}

TEST_CASE("TimeoutFactory times out any protocol, resetting on reads and writes") {
  ManualClock clock;
  RecordingFactory inner;
  inner.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) {
      if (d == "ping") rr.transport->write("pong");
    };
  };
  TimeoutFactory factory(inner, clock, 5);
  auto p = factory.build_protocol(Address::ip("10.0.0.1", 1));
  REQUIRE(p);
  StringTransport t;
  t.connect(*p);
  REQUIRE(inner.records.size() == 1);
  clock.advance(4);
  p->data_received("ping");
  CHECK(t.value() == "pong");
  clock.advance(4);
  inner.records[0].transport->write("unprompted");  // a write is activity too
  clock.advance(4.9);
  CHECK_FALSE(t.aborted());
  clock.advance(0.1);
  CHECK(t.aborted());
  t.disconnect(Reason(error::connection_aborted));
  CHECK(inner.records[0].lost == 1);
  CHECK(inner.records[0].reason->is(error::connection_aborted));
  CHECK(clock.pending_count() == 0);
  CHECK_THROWS_AS(TimeoutFactory(inner, clock, -1), std::invalid_argument);
}

// --- LineDeadlineFactory ---------------------------------------------------------------

namespace {

// Collects lines; remembers how it ended.
class Lines : public LineReceiver {
 public:
  explicit Lines(std::string delimiter = "\r\n") : LineReceiver(std::move(delimiter), 64) {}
  std::vector<std::string> lines;
  std::optional<Reason> reason;
  void line_received(std::string_view line) override { lines.emplace_back(line); }
  void connection_lost(const Reason& r) override { reason = r; }
};

// A LineDeadlineFactory over a factory of Lines, with the last protocol built.
struct DeadlineSetup {
  explicit DeadlineSetup(ManualClock& clock, double seconds, std::string delimiter = "\r\n")
      : inner([this, delimiter](const Address&) -> std::unique_ptr<Protocol> {
          auto p = std::make_unique<Lines>(delimiter);
          last = p.get();
          return p;
        }),
        factory(inner, clock, seconds, delimiter) {}
  Lines* last = nullptr;
  FunctionFactory<> inner;
  LineDeadlineFactory factory;
};

}  // namespace

TEST_CASE("LineDeadlineFactory: more bytes of the same line do not extend the deadline") {
  // The slowloris case: an idle time-out of 1 s never fires for a byte every 0.5 s, but
  // the line deadline (3 s from the line's first byte) does.
  ManualClock clock;
  DeadlineSetup s(clock, 3);
  TimeoutFactory idle(s.factory, clock, 1);
  auto p = idle.build_protocol(Address::ip("10.0.0.1", 1));
  REQUIRE(p);
  StringTransport t;
  t.connect(*p);
  p->data_received("G");
  for (int i = 0; i < 5; ++i) {
    clock.advance(0.5);
    p->data_received("E");
  }
  clock.advance(0.49);  // 2.99 s after the first byte
  CHECK_FALSE(t.aborted());
  clock.advance(0.01);
  CHECK(t.aborted());
  CHECK(s.factory.expired_count() == 1);
  CHECK(s.last->buffered_size() == 6);  // the partial line, nothing more
  t.disconnect(Reason(error::connection_aborted));
  REQUIRE(s.last->reason);
  CHECK(s.last->reason->is(error::timed_out));
  CHECK(s.last->reason->message().find("no whole line within 3 s") != std::string::npos);
  CHECK(clock.pending_count() == 0);
}

TEST_CASE("LineDeadlineFactory: a whole line stops the countdown, the next starts afresh") {
  ManualClock clock;
  DeadlineSetup s(clock, 1);
  auto p = s.factory.build_protocol(Address::ip("10.0.0.1", 1));
  StringTransport t;
  t.connect(*p);
  CHECK(clock.pending_count() == 0);  // no line pending: an idle peer is not this policy's
  p->data_received("hello\r\n");
  CHECK(clock.pending_count() == 0);
  clock.advance(100);
  CHECK_FALSE(t.aborted());
  p->data_received("x");  // a line begins: 1 s from now
  clock.advance(0.9);
  p->data_received("y\r\nz");  // it ends, and the next begins now
  clock.advance(0.9);
  CHECK_FALSE(t.aborted());
  p->data_received("zz");  // no extension
  clock.advance(0.1);
  CHECK(t.aborted());
  CHECK(s.last->lines == std::vector<std::string>{"hello", "xy"});
  t.disconnect(Reason(error::connection_aborted));
  CHECK(s.last->reason->is(error::timed_out));
}

TEST_CASE("LineDeadlineFactory: a connection closed otherwise keeps its own reason") {
  ManualClock clock;
  DeadlineSetup s(clock, 1);
  auto p = s.factory.build_protocol(Address::ip("10.0.0.1", 1));
  StringTransport t;
  t.connect(*p);
  p->data_received("partial");
  CHECK(clock.pending_count() == 1);
  t.disconnect(Reason(error::connection_lost));
  CHECK(clock.pending_count() == 0);  // the countdown goes with the connection
  CHECK(s.last->reason->is(error::connection_lost));
  CHECK(s.factory.expired_count() == 0);
}

TEST_CASE("LineDeadlineFactory: time while the protocol has paused reading does not count") {
  ManualClock clock;
  DeadlineSetup s(clock, 1);
  auto p = s.factory.build_protocol(Address::ip("10.0.0.1", 1));
  StringTransport t;
  t.connect(*p);
  p->data_received("par");
  clock.advance(0.4);
  s.last->pause_producing();  // through the wrapper to the transport
  CHECK(t.reading_paused());
  clock.advance(60);  // the peer cannot send now: not its fault
  CHECK_FALSE(t.aborted());
  s.last->resume_producing();
  clock.advance(0.59);  // 0.4 + 0.59 of reading time
  CHECK_FALSE(t.aborted());
  clock.advance(0.01);
  CHECK(t.aborted());
  CHECK(s.factory.expired_count() == 1);

  // A line that starts while paused starts its countdown only on resume.
  ManualClock clock2;
  DeadlineSetup s2(clock2, 1);
  auto p2 = s2.factory.build_protocol(Address::ip("10.0.0.1", 1));
  StringTransport t2;
  t2.connect(*p2);
  s2.last->pause_producing();
  p2->data_received("x");  // a read that was already under way
  clock2.advance(5);
  CHECK(clock2.pending_count() == 0);
  s2.last->resume_producing();
  clock2.advance(0.99);
  CHECK_FALSE(t2.aborted());
  clock2.advance(0.01);
  CHECK(t2.aborted());
}

TEST_CASE("LineDeadlineFactory finds lines as LineReceiver does, however reads are cut") {
  // After every read, a countdown is pending exactly when the LineReceiver behind the
  // wrapper holds a partial line, for every delimiter shape (one byte, two, four,
  // self-overlapping) and every way of cutting the input.
  struct Case {
    std::string delimiter;
    std::string input;
  };
  const std::vector<Case> cases = {
      {"\r\n", "ab\r\ncd\r\n\r\nef\r"},
      {"\r\n", "ab\r\ncd\r\n\r\n"},
      {"\n", "a\nbc\n\nd"},
      {"\r\n\r\n", "GET /\r\nHost: x\r\n\r\nGET /\r\n\r"},
      {"aa", "xaaaya"},
      {"aa", "xaaaa"},
      {"aba", "xababay"},
  };
  for (const Case& c : cases) {
    for (const test::Cut& cut : test::every_cut(c.input)) {
      CAPTURE(c.delimiter);
      CAPTURE(c.input);
      CAPTURE(cut.name);
      ManualClock clock;
      DeadlineSetup s(clock, 1, c.delimiter);
      auto p = s.factory.build_protocol(Address::ip("10.0.0.1", 1));
      StringTransport t;
      t.connect(*p);
      for (std::string_view chunk : cut.chunks) {
        p->data_received(chunk);
        CHECK((clock.pending_count() == 1) == (s.last->buffered_size() > 0));
      }
    }
  }
}

TEST_CASE("LineDeadlineFactory refuses a bad period or an empty delimiter") {
  ManualClock clock;
  RecordingFactory inner;
  CHECK_THROWS_AS(LineDeadlineFactory(inner, clock, -1), std::invalid_argument);
  CHECK_THROWS_AS(LineDeadlineFactory(inner, clock, std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(LineDeadlineFactory(inner, clock, 1, ""), std::invalid_argument);
  LineDeadlineFactory ok(inner, clock, 2.5, "\n");
  CHECK(ok.deadline() == 2.5);
  CHECK(ok.delimiter() == "\n");
}
