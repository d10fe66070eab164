// The Twisted finger tutorial, stage 09 (getProcessOutput per line), ported: a
// LineReceiver that runs a program for each line and writes its output from a Deferred
// callback. The client sends two lines; the first answer closes the connection while the
// second child still runs, so the second callback fires after the protocol is destroyed.
// Written the natural way (a bare `[this]`, the probe from issue 18: before binding it
// read freed memory, ASan heap-use-after-free, and a release build crashed) and with
// guard(): either way the callback is bound to the protocol and runs only while it exists
// (docs/protocols-and-factories.md, "Callbacks that outlive their protocol").

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "framework/protocol.hpp"
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

namespace {

struct Counts {
  int alive = 0;
  int answers = 0;
};

// "fast" answers at once; "slow" answers with what the test writes into the FIFO.
// Guarded: the callback is wrapped in guard(); otherwise a bare [this], as a Twisted user
// would port it.
template <bool Guarded>
class Finger final : public LineReceiver {
 public:
  Finger(Reactor& reactor, Counts& counts, std::string fifo)
      : reactor_(reactor), counts_(counts), fifo_(std::move(fifo)) {
    ++counts_.alive;
  }
  ~Finger() override { --counts_.alive; }

  void line_received(std::string_view user) override {
    std::vector<std::string> argv{"cat", fifo_};
    if (user == "fast") argv = {"echo", "fast: on since today"};
    auto answer = [this](std::string out) {
      ++counts_.answers;
      transport().write(out);
      transport().lose_connection();
    };
    if constexpr (Guarded)
      get_process_output(reactor_, argv).add_callback(guard(answer));
    else
      get_process_output(reactor_, argv).add_callback(answer);
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
    char dir_template[] = "/tmp/torsion-finger-XXXXXX";
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

// The whole probe, with the server's protocols made by `make`, served directly or
// behind a TimeoutFactory.
template <bool Guarded>
void serve_two_lines(bool wrapped) {
  Fifo fifo;
  Reactor reactor;
  Counts counts;
  FunctionFactory<Factory> plain([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Finger<Guarded>>(reactor, counts, fifo.path);
  });
  TimeoutFactory idle(plain, reactor, 60);
  Factory& server = wrapped ? static_cast<Factory&>(idle) : static_cast<Factory&>(plain);
  auto port = listen_tcp(reactor, 0, server, loopback());

  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("fast\r\nslow\r\n"); };
  };
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  REQUIRE(wait_for(
      reactor, [&] { return client.lost == 1 && counts.alive == 0; },
      "the first answer to close the connection and free its protocol"));
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == "fast: on since today\n");
  CHECK(counts.answers == 1);
  CHECK(reactor.connection_count() == 1);  // the second child, blocked on the FIFO

  fifo.release("slow: never seen\n");  // its Deferred fires now, with the protocol gone
  REQUIRE(wait_for(
      reactor, [&] { return reactor.connection_count() == 0; }, "the second child to end"));
  CHECK(counts.answers == 1);  // the bound callback did not run
  CHECK(no_children());
}

}  // namespace

TEST_CASE(
    "finger stage 09 written the natural way: the late callback never runs on a freed protocol") {
  bool wrapped = false;
  SUBCASE("plain") { wrapped = false; }
  SUBCASE("behind a TimeoutFactory") { wrapped = true; }
  serve_two_lines<false>(wrapped);
}

TEST_CASE("finger stage 09: the second child ends after the first answer closed the connection") {
  serve_two_lines<true>(false);  // with guard()
}
