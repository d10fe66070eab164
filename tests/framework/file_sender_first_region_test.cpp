// FileSender hands a file with a known length to the transport in the begin_transfer call
// (the first sendfile region is queued behind what was written before, so an HTTP head and
// its file leave together), and open_file_source knows a regular file's size without
// another look-up (ByteSource::size_at_open).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "framework/file_sender.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::pattern_stream;
using torsion::test::wait_for;

namespace {

// A temporary file holding the first `size` bytes of the test pattern.
struct TempPatternFile {
  std::string path;
  explicit TempPatternFile(std::size_t size) {
    char name[] = "/tmp/torsion-first-region-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    const std::string data = pattern_stream().bytes(size);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  ~TempPatternFile() { ::unlink(path.c_str()); }
};

// Writes `head`, begins sending the file (with `length` if set) and notes the transport's
// buffer_size() right after begin_transfer returns; closes when the transfer is done.
struct HeadThenFile : Factory {
  std::string path, head;
  std::optional<std::uint64_t> length;
  std::optional<std::size_t> buffered_after_begin;
  std::optional<std::error_code> result;
  bool lost = false;

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    struct P : Protocol {
      HeadThenFile& s;
      FileSender sender;
      explicit P(HeadThenFile& server) : s(server) { sender.set_region_size(64 * 1024 * 1024); }
      void connection_made() override {
        const int small = 64 * 1024;  // the kernel cannot take a whole region at once
        REQUIRE(::setsockopt(transport().native_handle(), SOL_SOCKET, SO_SNDBUF, &small,
                             sizeof small) == 0);
        transport().write(s.head);
        sender.begin_transfer(
            transport(), open_file_source(s.path),
            [this](std::error_code ec) {
              s.result = ec;
              transport().lose_connection();
            },
            s.length);
        s.buffered_after_begin = transport().buffer_size();
      }
      void connection_lost(const Reason&) override { s.lost = true; }
    };
    return std::make_unique<P>(*this);
  }
};

struct Received {
  std::string head;
  std::size_t head_size = 0;
  std::uint64_t body = 0;
  bool corrupt = false;
  bool lost = false;
};

void run(Reactor& reactor, HeadThenFile& server, Received& got) {
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    struct R : Protocol {
      Received& g;
      explicit R(Received& r) : g(r) {}
      void data_received(std::string_view d) override {
        const std::size_t n = std::min(d.size(), g.head_size - g.head.size());
        g.head.append(d.substr(0, n));
        d.remove_prefix(n);
        if (!pattern_stream().matches(g.body, d)) g.corrupt = true;
        g.body += d.size();
      }
      void connection_lost(const Reason&) override { g.lost = true; }
    };
    return std::make_unique<R>(got);
  });
  auto port = listen_tcp(reactor, 0, server, loopback());
  connect_tcp(reactor, "127.0.0.1", port->port(), client);
  REQUIRE(wait_for(reactor, [&] { return got.lost && server.lost; }, "both ends to close"));
}

}  // namespace

TEST_CASE("open_file_source: a regular file's size is known at open, a device's is not") {
  TempPatternFile file(12345);
  const auto source = open_file_source(file.path);
  REQUIRE(source->size_at_open());
  CHECK(*source->size_at_open() == 12345u);
  CHECK(source->file_descriptor() >= 0);
  const auto device = open_file_source("/dev/null");
  CHECK_FALSE(device->size_at_open());
  CHECK(device->file_descriptor() == -1);
}

TEST_CASE("FileSender with a length queues the first region in begin_transfer, behind the head") {
  Reactor reactor;
  const std::size_t size = 4 * 1024 * 1024 + 3;
  TempPatternFile file(size);
  HeadThenFile server;
  server.path = file.path;
  server.head = "HTTP/1.1 200 OK\r\nContent-Length: 4194307\r\n\r\n";
  server.length = size;
  Received got;
  got.head_size = server.head.size();
  run(reactor, server, got);
  REQUIRE(server.buffered_after_begin);
  // The region counts in buffer_size() as soon as it is queued; the kernel's 64 KiB send
  // buffer cannot have taken 4 MiB, so more than the head is still waiting.
  CHECK(*server.buffered_after_begin > server.head.size());
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(got.head == server.head);  // the head (sent with MSG_MORE) leaves first, whole
  CHECK(got.body == size);
  CHECK_FALSE(got.corrupt);
}

TEST_CASE("FileSender without a length writes nothing in begin_transfer (the loop asks)") {
  Reactor reactor;
  const std::size_t size = 1024 * 1024;
  TempPatternFile file(size);
  HeadThenFile server;
  server.path = file.path;
  server.head = "<head>";
  Received got;
  got.head_size = server.head.size();
  run(reactor, server, got);
  REQUIRE(server.buffered_after_begin);
  CHECK(*server.buffered_after_begin <= server.head.size());
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(got.head == "<head>");
  CHECK(got.body == size);
  CHECK_FALSE(got.corrupt);
}
