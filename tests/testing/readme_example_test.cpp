// The example of the README's "Testing your protocols" section, compiled and run: one
// small protocol tested three ways.
#include <doctest/doctest.h>

#include <cctype>
#include <string>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/testing/loopback.hpp"
#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"

// The protocol: answers each '\n'-terminated line in upper case; hangs up on a line over
// `max_line` bytes, and after `idle_timeout` seconds without input. It takes a Scheduler&
// (the Reactor in production, a ManualClock in tests) instead of a Reactor&.
class Shouter : public torsion::Protocol {
 public:
  explicit Shouter(torsion::Scheduler& clock, double idle_timeout = 30, std::size_t max_line = 80)
      : clock_(clock), idle_timeout_(idle_timeout), max_line_(max_line) {}

  void connection_made() override {
    idle_ = clock_.call_later(idle_timeout_, [this] {
      transport().write("idle timeout\n");
      transport().lose_connection();
    });
  }

  void data_received(std::string_view data) override {
    idle_.reset(idle_timeout_);
    buffer_.append(data);
    std::size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      transport().write(line + "\n");
    }
    if (buffer_.size() > max_line_) {
      transport().write("line too long\n");
      transport().lose_connection();
    }
  }

  void connection_lost(const torsion::Reason&) override { idle_.cancel(); }

 private:
  torsion::Scheduler& clock_;
  double idle_timeout_;
  std::size_t max_line_;
  std::string buffer_;
  torsion::DelayedCall idle_;
};

using torsion::testing::Loopback;
using torsion::testing::LoopbackOptions;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;

// 1. StringTransport: feed bytes, look at what the protocol wrote.
TEST_CASE("README: Shouter with a StringTransport") {
  ManualClock clock;
  Shouter shouter(clock);
  StringTransport transport;
  transport.connect(shouter);

  transport.receive("hello\nwor");
  CHECK(transport.value() == "HELLO\n");
  transport.receive("ld\n");
  CHECK(transport.take() == "HELLO\nWORLD\n");

  transport.receive(std::string(81, 'x'));  // over the limit: a defined outcome
  CHECK(transport.value() == "line too long\n");
  CHECK(transport.disconnecting());
  transport.disconnect();             // the test decides when connection_lost comes
  CHECK(clock.pending_count() == 0);  // the idle timer went with the connection
}

// 2. Loopback pump, one byte per data_received: framing must survive every split.
TEST_CASE("README: Shouter over a loopback, one byte at a time") {
  struct Client : torsion::Protocol {
    std::string received;
    void connection_made() override {
      transport().write("one\ntwo\n");
      transport().lose_write_connection();  // half-close: "that is all"
    }
    void data_received(std::string_view data) override { received.append(data); }
  };
  ManualClock clock;
  Shouter server(clock);
  Client client;
  Loopback loop(client, server, LoopbackOptions::one_byte());
  loop.pump();  // moves bytes both ways until nothing moves
  CHECK(client.received == "ONE\nTWO\n");
  CHECK(loop.finished());  // EOF closed the server; both heard connection_lost
  CHECK(loop.server_transport().reason()->clean());
}

// 3. ManualClock: the idle time-out without waiting 30 seconds.
TEST_CASE("README: Shouter's idle time-out on a manual clock") {
  ManualClock clock;
  Shouter shouter(clock);
  StringTransport transport;
  transport.connect(shouter);

  clock.advance(29);
  transport.receive("still here\n");  // input resets the timer
  clock.advance(29);
  CHECK_FALSE(transport.disconnecting());
  clock.advance(1);
  CHECK(transport.value() == "STILL HERE\nidle timeout\n");
  CHECK(transport.disconnecting());
}
