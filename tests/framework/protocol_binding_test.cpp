// Callbacks that outlive their protocol, written the natural way: a protocol hands
// `[this]` lambdas to add_callback, call_soon and call_later from its events, without
// guard(). They are bound to the protocol (framework/detail/protocol_scope.hpp) and never
// run once it is destroyed. The finger tutorial's stage 09 (getProcessOutput per line) is
// the probe from issue 18: before binding, the second callback read freed memory (ASan:
// heap-use-after-free; a release build crashed).

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/manual_clock.hpp"
#include "protocols/line_receiver.hpp"
#include "protocols/timeout.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/process_helpers.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;
using torsion::testing::ManualClock;

namespace {

struct Counts {
  int alive = 0;
  int answers = 0;
};

// Finger, stage 09, exactly as a Twisted user would port it: a bare [this].
class NaturalFinger final : public LineReceiver {
 public:
  NaturalFinger(Reactor& reactor, Counts& counts, std::string fifo)
      : reactor_(reactor), counts_(counts), fifo_(std::move(fifo)) {
    ++counts_.alive;
  }
  ~NaturalFinger() override { --counts_.alive; }

  void line_received(std::string_view user) override {
    std::vector<std::string> argv{"cat", fifo_};
    if (user == "fast") argv = {"echo", "fast: on since today"};
    auto unused = get_process_output(reactor_, argv).add_callback([this](std::string out) {
      ++counts_.answers;
      transport().write(out);
      transport().lose_connection();
    });
  }

 private:
  Reactor& reactor_;
  Counts& counts_;
  std::string fifo_;
};

bool no_children() {
  int raw = 0;
  return ::waitpid(-1, &raw, WNOHANG) == -1 && errno == ECHILD;
}

struct Fifo {
  std::string dir, path;
  Fifo() {
    char dir_template[] = "/tmp/torsion-binding-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    dir = dir_template;
    path = dir + "/slow";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  }
  ~Fifo() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  void release(std::string_view text) const {
    const int w = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);  // cat holds the read end
    REQUIRE(w >= 0);
    REQUIRE(::write(w, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(w);
  }
};

}  // namespace

TEST_CASE(
    "finger stage 09 written the natural way: the late callback never runs on a freed protocol") {
  Fifo fifo;
  Reactor reactor;
  Counts counts;
  FunctionFactory<Factory> plain([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<NaturalFinger>(reactor, counts, fifo.path);
  });
  TimeoutFactory idle(plain, reactor, 60);  // the same, behind a wrapper
  bool wrapped = false;
  SUBCASE("plain") { wrapped = false; }
  SUBCASE("behind a TimeoutFactory") { wrapped = true; }
  Factory& server = wrapped ? static_cast<Factory&>(idle) : static_cast<Factory&>(plain);
  auto port = listen_tcp(reactor, 0, server, loopback());

  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("fast\r\nslow\r\n"); };
  };
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(
      reactor, [&] { return client.lost == 1 && counts.alive == 0; },
      "the first answer to close the connection and free its protocol");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == "fast: on since today\n");
  CHECK(counts.answers == 1);
  CHECK(reactor.connection_count() == 1);  // the second child, blocked on the FIFO

  fifo.release("slow: never seen\n");  // its Deferred fires now, with the protocol gone
  wait_for(
      reactor, [&] { return reactor.connection_count() == 0; }, "the second child to end");
  CHECK(counts.answers == 1);  // the bound callback did not run
  CHECK(no_children());
}

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
