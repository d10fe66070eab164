#include "protocols/timeout.hpp"

#include <doctest/doctest.h>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
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
