// The loopback pump promises that disconnects, half-closes and resets propagate as over
// TCP. These tests run the same scripts over real TCP sockets (127.0.0.1) and over a
// Loopback, and check that both protocols hear the same things: bytes, EOFs, and the
// kind and OS cause of connection_lost. Only scripts whose TCP outcome does not depend
// on timing are used (each phase waits for the kernel state it needs).
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "framework/protocol.hpp"
#include "framework/testing/loopback.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/socket_probe.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::testing::Loopback;
using torsion::testing::LoopbackOptions;

namespace {

struct Side {
  std::string received;
  int made = 0, eofs = 0, lost = 0;
  std::optional<Reason> reason;
  Transport* t = nullptr;
  bool keep_open_on_eof = false;
  std::function<void(Side&)> on_made;
  std::function<void(Side&, std::string_view)> on_data;
  std::function<void(Side&)> on_eof;
  bool done() const { return lost > 0; }
};

class Scripted : public Protocol {
 public:
  explicit Scripted(Side& s) : s_(s) {}
  void connection_made() override {
    ++s_.made;
    s_.t = &transport();
    if (s_.on_made) s_.on_made(s_);
  }
  void data_received(std::string_view d) override {
    s_.received.append(d);
    if (s_.on_data) s_.on_data(s_, d);
  }
  bool eof_received() override {
    ++s_.eofs;
    if (s_.on_eof) s_.on_eof(s_);
    return s_.keep_open_on_eof;
  }
  void connection_lost(const Reason& r) override {
    ++s_.lost;
    s_.reason = r;
    s_.t = nullptr;
  }

 private:
  Side& s_;
};

// After the setup, each phase acts, then waits (TCP: until `ready`; loopback: pump()).
struct Phase {
  std::function<void(Side& client, Side& server)> act;
  std::function<bool(Side& client, Side& server)> ready;
  const char* what;
};

struct Script {
  std::function<void(Side& client, Side& server)> setup;
  std::function<bool(Side& client, Side& server)> ready;  // after connecting
  std::vector<Phase> phases;
};

struct Outcome {
  std::string received;
  int eofs;
  error kind;
  int cause;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{received \"" << o.received << "\", eofs " << o.eofs << ", kind "
            << make_error_code(o.kind).message() << ", cause " << o.cause << "}";
}
bool operator==(const Outcome& a, const Outcome& b) {
  return a.received == b.received && a.eofs == b.eofs && a.kind == b.kind && a.cause == b.cause;
}

Outcome outcome(const Side& s) {
  REQUIRE(s.lost == 1);
  return {s.received, s.eofs, s.reason->kind(), s.reason->cause().value()};
}

std::pair<Outcome, Outcome> over_tcp(const Script& script) {
  Reactor reactor;
  Side client, server;
  script.setup(client, server);
  FunctionFactory<> server_factory([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Scripted>(server);
  });
  auto port = listen_tcp(reactor, 0, server_factory, loopback());
  FunctionFactory<ClientFactory> client_factory([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Scripted>(client);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client_factory);
  REQUIRE(test::wait_for(
      reactor, [&] { return client.made == 1 && server.made == 1 && script.ready(client, server); },
      "the connection"));
  for (const Phase& phase : script.phases) {
    phase.act(client, server);
    REQUIRE(test::wait_for(
        reactor, [&] { return phase.ready(client, server); }, phase.what));
  }
  REQUIRE(test::wait_for(
      reactor, [&] { return client.done() && server.done(); }, "both ends"));
  CHECK(reactor.connection_count() == 0);
  return {outcome(client), outcome(server)};
}

std::pair<Outcome, Outcome> over_loopback(const Script& script, LoopbackOptions options) {
  Side client, server;
  script.setup(client, server);
  Scripted c(client), s(server);
  Loopback loop(c, s, options);
  loop.pump();
  for (const Phase& phase : script.phases) {
    phase.act(client, server);
    loop.pump();
  }
  CHECK(loop.finished());
  return {outcome(client), outcome(server)};
}

void compare(const Script& script) {
  const auto tcp = over_tcp(script);
  for (const LoopbackOptions& o :
       {LoopbackOptions(), LoopbackOptions::one_byte(), LoopbackOptions::random_chunks(5, 3)}) {
    CAPTURE(o.chunk_size);
    const auto mem = over_loopback(script, o);
    CHECK(mem.first == tcp.first);
    CHECK(mem.second == tcp.second);
  }
}

auto always = [](Side&, Side&) { return true; };

}  // namespace

TEST_CASE("loopback vs TCP: the server greets and closes") {
  compare({[](Side&, Side& s) {
             s.on_made = [](Side& x) {
               x.t->write("greeting");
               x.t->lose_connection();
             };
           },
           always,
           {}});
}

TEST_CASE("loopback vs TCP: request, half-close, response, close") {
  compare({[](Side& c, Side& s) {
             c.on_made = [](Side& x) {
               x.t->write("request");
               x.t->lose_write_connection();
             };
             s.on_data = [](Side& x, std::string_view) {
               if (x.received == "request") {
                 x.t->write("response");
                 x.t->lose_connection();
               }
             };
           },
           always,
           {}});
}

TEST_CASE("loopback vs TCP: an abort resets a reading peer") {
  compare({[](Side& c, Side& s) {
             c.on_made = [](Side& x) { x.t->write("x"); };
             s.on_data = [](Side& x, std::string_view) { x.t->abort_connection(); };
           },
           always,
           {}});
}

TEST_CASE("loopback vs TCP: the peer's EOF kept open, then writing to a closed socket") {
  int server_fd = -1;
  compare({[&](Side& c, Side& s) {
             s.keep_open_on_eof = true;
             s.on_made = [&](Side& x) { server_fd = x.t->native_handle(); };
             c.on_made = [](Side& x) { x.t->lose_connection(); };
           },
           [](Side& c, Side& s) { return c.done() && s.eofs == 1; },
           {
               // The first write succeeds and the closed side answers with RST...
               {[](Side&, Side& s) { s.t->write("a"); },
                [&](Side&, Side&) { return test::reset_received(server_fd); }, "the RST"},
               // ...so the second fails: EPIPE, as the peer's FIN came first.
               {[](Side&, Side& s) { s.t->write("b"); }, [](Side&, Side& s) { return s.done(); },
                "the failed write"},
           }});
}

TEST_CASE("loopback vs TCP: a paused reader gets data and EOF after resuming") {
  int server_fd = -1;
  compare({[&](Side& c, Side& s) {
             s.on_made = [&](Side& x) {
               server_fd = x.t->native_handle();
               x.t->pause_producing();
             };
             c.on_made = [](Side& x) {
               x.t->write("one,");
               x.t->write("two,");
               x.t->lose_write_connection();
             };
           },
           [&](Side&, Side&) {
             return test::unread_bytes(server_fd) == 8 && test::fin_received(server_fd);
           },
           {{[](Side&, Side& s) {
               CHECK(s.received.empty());
               s.t->resume_producing();
             },
             [](Side& c, Side& s) { return c.done() && s.done(); }, "the close"}}});
}
