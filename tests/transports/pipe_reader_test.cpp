// PipeReader (framework/file_region.hpp) on the stream engine, below the relay that uses
// it (tests/protocols/relay_splice_test.cpp): reads spliced into a sink's pipe, and the
// reads that fall back to data_received: no room offered, a full pipe, a descriptor the
// kernel cannot splice into.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "framework/file_region.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;

namespace {

// What the sink offers, set by the test; what it heard.
struct SinkState {
  int fd = -1;
  std::size_t room = 0;
  bool empty = true;
  std::size_t piped = 0;
  std::string received;  // by data_received
  int eofs = 0;
  bool lost = false;
};

class Sink final : public Protocol, public PipeSink {
 public:
  explicit Sink(SinkState& s) : s_(s) {}
  void connection_made() override {
    auto* reader = dynamic_cast<PipeReader*>(&transport());
    REQUIRE(reader != nullptr);
    CHECK(reader->read_into_pipe(this));
  }
  Room pipe_room() override { return {s_.fd, s_.room, s_.empty}; }
  void piped(std::size_t n) override { s_.piped += n; }
  void data_received(std::string_view d) override { s_.received.append(d); }
  bool eof_received() override {
    ++s_.eofs;
    return false;
  }
  void connection_lost(const Reason&) override { s_.lost = true; }

 private:
  SinkState& s_;
};

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  std::string drain() const {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
      out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
};

// A server whose connections are Sinks, and a client connected to it.
struct Rig {
  Reactor reactor;
  SinkState state;
  FunctionFactory<> server{[this](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Sink>(state);
  }};
  std::shared_ptr<ListeningPort> port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  Transport* connect() {
    connect_tcp(reactor, "127.0.0.1", port->port(), client);
    REQUIRE(wait_for(reactor, [&] { return !client.records.empty() && client.records[0].made == 1; },
                     "the connection"));
    return client.records[0].transport;
  }
};

}  // namespace

TEST_CASE("PipeReader: reads go into the sink's pipe; the EOF is heard as usual") {
  Rig rig;
  Pipe pipe;
  rig.state.fd = pipe.fds[1];
  rig.state.room = 65536;
  Transport* client = rig.connect();
  client->write("spliced bytes");
  REQUIRE(wait_for(rig.reactor, [&] { return rig.state.piped == 13; }, "the splice"));
  CHECK(pipe.drain() == "spliced bytes");
  CHECK(rig.state.received.empty());
  client->lose_write_connection();
  REQUIRE(wait_for(rig.reactor, [&] { return rig.state.lost; }, "the EOF and the close"));
  CHECK(rig.state.eofs == 1);
}

TEST_CASE("PipeReader: no room, or a full pipe, reads as usual and calls data_received") {
  Rig rig;
  Pipe pipe;
  rig.state.fd = pipe.fds[1];
  SUBCASE("no room offered") { rig.state.room = 0; }
  SUBCASE("the pipe is full, though the sink thinks it has room") {
    const std::string block(4096, 'x');
    while (::write(pipe.fds[1], block.data(), block.size()) > 0) {
    }
    rig.state.room = 4096;
    rig.state.empty = false;
  }
  Transport* client = rig.connect();
  client->write("copied bytes");
  REQUIRE(wait_for(rig.reactor, [&] { return rig.state.received == "copied bytes"; },
                   "the ordinary read"));
  CHECK(rig.state.piped == 0);
}

TEST_CASE("PipeReader: a descriptor the kernel cannot splice into makes the reader forget the sink") {
  Rig rig;
  const int not_a_pipe = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  REQUIRE(not_a_pipe >= 0);
  rig.state.fd = not_a_pipe;  // splice(2) between two non-pipes: EINVAL
  rig.state.room = 65536;
  Transport* client = rig.connect();
  client->write("first");
  REQUIRE(wait_for(rig.reactor, [&] { return rig.state.received == "first"; }, "the ordinary read"));
  // Forgotten: a real pipe offered now is not used.
  Pipe pipe;
  rig.state.fd = pipe.fds[1];
  client->write(" second");
  REQUIRE(wait_for(rig.reactor, [&] { return rig.state.received == "first second"; },
                   "the next read"));
  CHECK(rig.state.piped == 0);
  ::close(not_a_pipe);
}
