// Callbacks that outlive their protocol, written the natural way: a protocol hands
// `[this]` lambdas to add_callback, call_soon and call_later from its events, without
// guard(). They are bound to the protocol (framework/detail/protocol_scope.hpp) and never
// run once it is destroyed. The probe from issue 18, the finger tutorial's stage 09, is
// tests/framework/finger_test.cpp.

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;
using torsion::testing::ManualClock;

namespace {

// Hands out [this] callbacks from data_received: a value callback into a Deferred the
// test fires later and a call_later on the manual clock; and one that captures only a
// counter (not the protocol), which must run whatever happens to the protocol.
struct Handout : Protocol {
  ManualClock& clock;
  Deferred<int>& later;
  Deferred<int>& other;
  std::optional<Deferred<int>>& rest;
  std::optional<Deferred<void>>& unbound;
  int& ran;
  int& unbound_ran;
  Handout(ManualClock& c, Deferred<int>& d, Deferred<int>& o, std::optional<Deferred<int>>& r,
          std::optional<Deferred<void>>& u, int& n, int& un)
      : clock(c), later(d), other(o), rest(r), unbound(u), ran(n), unbound_ran(un) {}
  void data_received(std::string_view) override {
    rest = later.add_callback([this](int v) {
      ++ran;
      return v + static_cast<int>(transport().buffer_size());
    });
    (void)clock.call_later(5, [this] {  // the handle dropped: the call stays pending
      ++ran;
      transport().write("late");
    });
    int* counter = &unbound_ran;
    unbound = other.add_callback([counter](int) { ++*counter; });
  }
};

}  // namespace

TEST_CASE("[this] callbacks from an event: skipped once the protocol is gone; others run") {
  Reactor reactor;
  ManualClock clock;
  Deferred<int> later, other;
  std::optional<Deferred<int>> rest;
  std::optional<Deferred<void>> unbound;
  int ran = 0, unbound_ran = 0;
  FunctionFactory<Factory> server([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Handout>(clock, later, other, rest, unbound, ran, unbound_ran);
  });
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("go");
      rr.transport->lose_connection();
    };
  };
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(
      reactor, [&] { return rest.has_value() && reactor.connection_count() == 0; },
      "the callbacks handed out, then both ends gone");
  later.callback(1);  // the protocol is gone: the value callback fails the chain instead
  bool gone = false;
  auto end = rest->catch_error<ProtocolGoneError>([&](const ProtocolGoneError&) {
    gone = true;
    return 0;
  });
  CHECK(gone);
  clock.advance(5);
  CHECK(ran == 0);
  other.callback(2);
  CHECK(unbound_ran == 1);
}

TEST_CASE("call_soon and call_later bind a [this] callable only to a protocol in scope") {
  struct P : Protocol {
    int* runs;
    explicit P(int* r) : runs(r) {}
    void hand_out(Reactor& reactor) {
      reactor.call_soon([this] { ++*runs; });
      (void)reactor.call_later(0, [this] { ++*runs; });
    }
  };
  Reactor reactor;
  int runs = 0;
  auto gone = std::make_unique<P>(&runs);
  auto kept = std::make_unique<P>(&runs);
  {
    const detail::ProtocolScope scope(gone.get());  // as a transport does around an event
    gone->hand_out(reactor);
  }
  kept->hand_out(reactor);  // outside any event: not bound (and `kept` stays alive)
  gone.reset();
  auto after = reactor.call_later(0, [] {});
  wait_for(
      reactor, [&] { return !after.active(); }, "the calls to be due");
  CHECK(runs == 2);  // only kept's two
}

namespace {

// A protocol whose Protocol base is not at the start of the object: `this` in its member
// functions (the most-derived address) differs from the Protocol* the transport holds.
struct Padding {
  virtual ~Padding() = default;
  long pad = 0;
};

struct Rearming : Padding, Protocol {
  ManualClock& clock;
  int& runs;
  std::function<void()> opt_out_target;
  Rearming(ManualClock& c, int& r) : clock(c), runs(r) {}
  void data_received(std::string_view data) override {
    if (data == "rearm") {
      // Bound when handed out here; the second call_later runs inside the first, which is
      // bound, so it is bound too.
      (void)clock.call_later(1, [this] {
        ++runs;
        (void)clock.call_later(1, [this] { runs += 10; });
      });
    } else if (data == "guard") {
      // Handed out by guard's callable: guard puts the protocol in scope while it runs.
      (void)clock.call_later(1, std::function<void()>(guard([this] {
                               ++runs;
                               (void)clock.call_later(1, [this] { runs += 10; });
                             })));
    } else if (data == "opt-out") {
      // A std::function handed over as such is not looked into: it runs after the
      // protocol is gone (it captures the address only to compare it).
      const void* self = this;
      int* counter = &runs;
      (void)clock.call_later(1, std::function<void()>([self, counter] {
                               if (self != nullptr) *counter += 100;
                             }));
    }
  }
  void connection_lost(const Reason&) override {
    (void)clock.call_later(1, [this] { runs += 1000; });
  }
};

}  // namespace

TEST_CASE("binding: the most-derived `this` is recognised when Protocol is not the first base") {
  ManualClock clock;
  int runs = 0;
  auto p = std::make_unique<Rearming>(clock, runs);
  REQUIRE(static_cast<const void*>(static_cast<Protocol*>(p.get())) !=
          static_cast<const void*>(p.get()));
  testing::StringTransport t;
  t.connect(*p);
  t.receive("rearm");
  clock.advance(1);
  CHECK(runs == 1);  // the first ran while the protocol lived, and set the second
  t.disconnect();    // connection_lost hands out a bound [this] timer too
  p.reset();
  clock.advance(5);
  CHECK(runs == 1);  // neither the re-armed timer nor the one from connection_lost ran
}

TEST_CASE("binding: a callback bound by guard binds what it hands out") {
  ManualClock clock;
  int runs = 0;
  auto p = std::make_unique<Rearming>(clock, runs);
  testing::StringTransport t;
  t.connect(*p);
  t.receive("guard");
  clock.advance(1);
  CHECK(runs == 1);
  t.disconnect();
  p.reset();
  clock.advance(5);
  CHECK(runs == 1);
}

TEST_CASE("binding: a callable handed over as std::function is not bound (the opt-out)") {
  ManualClock clock;
  int runs = 0;
  auto p = std::make_unique<Rearming>(clock, runs);
  testing::StringTransport t;
  t.connect(*p);
  t.receive("opt-out");
  t.disconnect();
  p.reset();
  clock.advance(5);
  CHECK(runs == 100);  // the std::function ran; connection_lost's bound timer did not
}

TEST_CASE("binding: while the protocol lives, bound callbacks and timers run as usual") {
  ManualClock clock;
  int runs = 0;
  Rearming p(clock, runs);
  testing::StringTransport t;
  t.connect(p);
  t.receive("rearm");
  clock.advance(1);
  clock.advance(1);
  CHECK(runs == 11);
  t.disconnect();
  clock.advance(1);
  CHECK(runs == 1011);  // connection_lost's timer, the protocol still alive
}
