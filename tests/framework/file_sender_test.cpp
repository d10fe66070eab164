#include "framework/file_sender.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::pattern_stream;
using torsion::test::wait_for;

namespace {

// A temporary file holding `data`, removed at the end of the test.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& data) {
    char name[] = "/tmp/torsion-file-sender-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

// A server that sends what `start` gives it with a FileSender, then closes.
struct SendingServer : Factory {
  std::function<std::unique_ptr<ByteSource>()> source;
  std::size_t chunk = 64 * 1024;
  bool close_when_done = true;
  std::optional<std::error_code> result;
  std::size_t max_buffer = 0;
  Transport* transport = nullptr;
  FileSender* sender = nullptr;

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    struct P : Protocol {
      SendingServer& s;
      FileSender sender;
      explicit P(SendingServer& server) : s(server), sender(server.chunk) {}
      void connection_made() override {
        s.transport = &transport();
        s.sender = &sender;
        sender.begin_transfer(transport(), s.source(), [this](std::error_code ec) {
          s.result = ec;
          if (!ec && s.close_when_done) transport().lose_connection();
        });
        CHECK(sender.active());
      }
      void connection_lost(const Reason&) override { s.transport = nullptr; }
    };
    return std::make_unique<P>(*this);
  }
};

// What a Reader saw; owned by the test (the transport destroys the protocol).
struct ReaderState {
  std::uint64_t received = 0;
  bool corrupt = false, lost = false;
  std::size_t abort_after = 0;
};

// Reads slowly and checks the pattern; watches the sender's buffer.
struct Reader : Protocol {
  Reactor& reactor;
  SendingServer& server;
  ReaderState& st;
  std::uint64_t& received = st.received;
  bool& corrupt = st.corrupt;
  bool& lost = st.lost;
  std::size_t& abort_after = st.abort_after;
  DelayedCall nap;
  Reader(Reactor& r, SendingServer& s, ReaderState& state) : reactor(r), server(s), st(state) {}
  void data_received(std::string_view d) override {
    if (!pattern_stream().matches(received, d)) corrupt = true;
    received += d.size();
    if (server.transport)
      server.max_buffer = std::max(server.max_buffer, server.transport->buffer_size());
    if (abort_after && received >= abort_after) {
      transport().abort_connection();
      return;
    }
    transport().pause_producing();
    Transport* t = &transport();
    nap = reactor.call_later(0.0002, [t] { t->resume_producing(); });
  }
  void connection_lost(const Reason&) override {
    nap.cancel();
    lost = true;
  }
};

}  // namespace

TEST_CASE("FileSender streams a file to a slow reader with at most one chunk queued") {
  Reactor reactor;
  const std::size_t size = 6 * 1024 * 1024 + 123;
  TempFile file(pattern_stream().bytes(size));
  SendingServer server;
  server.source = [&] { return open_file_source(file.path); };
  auto port = listen_tcp(reactor, 0, server, loopback());
  ReaderState st;
  ReaderState* reader = &st;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Reader>(reactor, server, st);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return reader->lost; }, "the file");
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(reader->received == size);
  CHECK_FALSE(reader->corrupt);
  CHECK(server.max_buffer <= server.chunk);
}

TEST_CASE("FileSender reports cancelled when the connection goes away mid-transfer") {
  Reactor reactor;
  SendingServer server;
  server.source = [] { return string_source(pattern_stream().bytes(8 * 1024 * 1024)); };
  auto port = listen_tcp(reactor, 0, server, loopback());
  ReaderState st;
  st.abort_after = 512 * 1024;
  ReaderState* reader = &st;
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Reader>(reactor, server, st);
  });
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return server.result.has_value(); }, "the transfer to end");
  CHECK(*server.result == error::cancelled);
  CHECK_FALSE(reader->corrupt);
}

TEST_CASE("FileSender: a failing source, stop(), and bad arguments") {
  Reactor reactor;
  struct Failing : ByteSource {
    int calls = 0;
    std::size_t read(std::span<char> out, std::error_code& ec) override {
      if (++calls == 3) {
        ec = std::make_error_code(std::errc::io_error);
        return 0;
      }
      out[0] = 'x';
      return 1;
    }
  };
  SendingServer server;
  server.close_when_done = false;
  server.source = [] { return std::make_unique<Failing>(); };
  auto port = listen_tcp(reactor, 0, server, loopback());
  torsion::test::RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return server.result.has_value(); }, "the failure");
  CHECK(*server.result == std::errc::io_error);
  CHECK(server.sender->bytes_sent() == 2);
  REQUIRE(server.transport);
  CHECK(server.transport->connected());  // left open for the caller to decide

  // The sender unregistered: a new transfer can start, and stop() ends it.
  server.result.reset();
  server.sender->begin_transfer(*server.transport, string_source("more"),
                                [&](std::error_code ec) { server.result = ec; });
  CHECK_THROWS_AS(server.sender->begin_transfer(*server.transport, string_source("x"), nullptr),
                  std::logic_error);
  server.sender->stop();
  REQUIRE(server.result);
  CHECK(*server.result == error::cancelled);
  CHECK_FALSE(server.sender->active());
  server.sender->stop();  // harmless

  CHECK_THROWS_WITH_AS(open_file_source("/no/such/file"), doctest::Contains("/no/such/file"),
                       std::system_error);
  CHECK_THROWS_AS(FileSender(0), std::invalid_argument);
  CHECK_THROWS_AS(server.sender->begin_transfer(*server.transport, nullptr, nullptr),
                  std::invalid_argument);
  server.transport->lose_connection();
  wait_for(reactor, [&] { return client.lost == 1; }, "the close");
  CHECK(client.records[0].received == "xx");
}
