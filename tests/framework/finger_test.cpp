// The Twisted finger tutorial, stage 09 (getProcessOutput per line), ported: a
// LineReceiver that runs a program for each line and writes its output from a Deferred
// callback. The client sends two lines; the first answer closes the connection while the
// second child still runs, so the second callback fires after the protocol is destroyed.
// The callback is bound to the protocol with guard(): it runs only while the protocol
// exists (docs/async-styles.md, "Callbacks that outlive their protocol"). Clean under
// AddressSanitizer; a callback capturing a bare `this` here reads freed memory.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

#include "framework/protocol.hpp"
#include "protocols/line_receiver.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/process_helpers.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::RecordingClientFactory;
using torsion::test::Record;
using torsion::test::wait_for;

namespace {

struct Counts {
  int protocols_alive = 0;
  int answers_written = 0;
};

// "fast" answers at once; "slow" answers with what the test writes into the FIFO.
class FingerProtocol final : public LineReceiver {
 public:
  FingerProtocol(Reactor& reactor, Counts& counts, std::string fifo)
      : reactor_(reactor), counts_(counts), fifo_(std::move(fifo)) {
    ++counts_.protocols_alive;
  }
  ~FingerProtocol() override { --counts_.protocols_alive; }

  void line_received(std::string_view user) override {
    std::vector<std::string> argv;
    if (user == "fast")
      argv = {"echo", "fast: on since today"};
    else
      argv = {"cat", fifo_};
    get_process_output(reactor_, argv)
        .add_callback(guard([this](std::string out) {
          ++counts_.answers_written;
          transport().write(out);
          transport().lose_connection();
        }));
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

}  // namespace

TEST_CASE("finger stage 09: the second child ends after the first answer closed the connection") {
  char dir_template[] = "/tmp/torsion-finger-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string fifo = dir + "/slow";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);

  Reactor reactor;
  Counts counts;
  FunctionFactory<Factory> server([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<FingerProtocol>(reactor, counts, fifo);
  });
  auto port = listen_tcp(reactor, 0, server, loopback());

  RecordingClientFactory client;
  client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("fast\r\nslow\r\n"); };
  };
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1 && counts.protocols_alive == 0; },
           "the first answer to close the connection and free its protocol");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == "fast: on since today\n");
  CHECK(counts.answers_written == 1);
  CHECK(reactor.connection_count() == 1);  // the second child, blocked on the FIFO

  // Let the second child finish: its Deferred fires now, with the protocol gone.
  const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // cat holds the read end
  REQUIRE(w >= 0);
  REQUIRE(::write(w, "slow: never seen\n", 17) == 17);
  ::close(w);
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "the second child to end");
  CHECK(counts.answers_written == 1);  // the guarded callback did not run
  CHECK(no_children());
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
}
