// FileSender's zero-copy path: a regular file over TCP and Unix sockets goes through
// FileWriter::write_file (sendfile(2)); other transports keep the buffered path.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "framework/file_region.hpp"
#include "framework/file_sender.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/detail/stream_engine.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::pattern_stream;
using torsion::test::wait_for;

namespace {

// A temporary file holding the first `size` bytes of the test pattern.
struct PatternFile {
  std::string path;
  explicit PatternFile(std::size_t size) {
    char name[] = "/tmp/torsion-sendfile-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    const std::string data = pattern_stream().bytes(size);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  ~PatternFile() { ::unlink(path.c_str()); }
};

// Counts the read() calls made on a file source: the sendfile path makes none.
struct CountingSource final : ByteSource {
  std::unique_ptr<ByteSource> inner;
  int& reads;
  CountingSource(std::unique_ptr<ByteSource> source, int& counter)
      : inner(std::move(source)), reads(counter) {}
  std::size_t read(std::span<char> out, std::error_code& ec) override {
    ++reads;
    return inner->read(out, ec);
  }
  int file_descriptor() const noexcept override { return inner->file_descriptor(); }
};

// A server that sends `path` with a FileSender (`before` first, `after` once it is done),
// then closes.
struct FileServer : Factory {
  std::string path;
  std::size_t chunk = 256 * 1024;
  std::size_t region = 0;  // set_region_size when > 0
  std::optional<std::uint64_t> length;
  std::string before, after;
  int send_buffer = 0;  // SO_SNDBUF when > 0, to force partial sends
  int reads = 0;
  std::optional<std::error_code> result;
  std::optional<Reason> lost;
  std::size_t max_buffer = 0;
  std::uint64_t write_calls = 0;
  Transport* transport = nullptr;

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    struct P : Protocol {
      FileServer& s;
      FileSender sender;
      explicit P(FileServer& server) : s(server), sender(server.chunk) {
        if (server.region) sender.set_region_size(server.region);
      }
      void connection_made() override {
        s.transport = &transport();
        if (s.send_buffer > 0)
          REQUIRE(::setsockopt(transport().native_handle(), SOL_SOCKET, SO_SNDBUF,
                               &s.send_buffer, sizeof s.send_buffer) == 0);
        if (!s.before.empty()) transport().write(s.before);
        sender.begin_transfer(
            transport(), std::make_unique<CountingSource>(open_file_source(s.path), s.reads),
            [this](std::error_code ec) {
              s.result = ec;
              if (ec) return;
              if (!s.after.empty()) transport().write(s.after);
              transport().lose_connection();
            },
            s.length);
      }
      void connection_lost(const Reason& reason) override {
        if (auto* counter = dynamic_cast<detail::WriteCounter*>(&transport()))
          s.write_calls = counter->write_calls;
        s.lost = reason;
        s.transport = nullptr;
      }
    };
    return std::make_unique<P>(*this);
  }
};

// Reads (slowly when `nap` is set), checks the pattern from `skip` bytes on, and watches
// the server's queue.
struct ReaderState {
  std::uint64_t received = 0;
  std::string head;  // the first bytes, unchecked, when skip > 0
  std::size_t skip = 0;
  bool corrupt = false;
  std::optional<Reason> lost;
  std::size_t abort_after = 0;
  bool nap = false;
  std::function<void(std::uint64_t)> on_progress;
};

struct Reader : Protocol {
  Reactor& reactor;
  FileServer& server;
  ReaderState& st;
  DelayedCall nap;
  Reader(Reactor& r, FileServer& s, ReaderState& state) : reactor(r), server(s), st(state) {}
  void data_received(std::string_view d) override {
    if (st.head.size() < st.skip) {
      const std::size_t n = std::min(d.size(), st.skip - st.head.size());
      st.head.append(d.substr(0, n));
      d.remove_prefix(n);
    }
    if (!pattern_stream().matches(st.received, d)) st.corrupt = true;
    st.received += d.size();
    if (server.transport)
      server.max_buffer = std::max(server.max_buffer, server.transport->buffer_size());
    if (st.on_progress) st.on_progress(st.received);
    if (st.abort_after && st.received >= st.abort_after) {
      transport().abort_connection();
      return;
    }
    if (!st.nap) return;
    transport().pause_producing();
    Transport* t = &transport();
    nap = reactor.call_later(0.0002, [t] { t->resume_producing(); });
  }
  void connection_lost(const Reason& reason) override {
    nap.cancel();
    st.lost = reason;
  }
};

enum class Kind { tcp, unix_socket };

// Runs one transfer from `server` to a Reader over `kind`; returns when both ends are gone.
void transfer(Reactor& reactor, FileServer& server, ReaderState& st, Kind kind = Kind::tcp) {
  FunctionFactory<ClientFactory> client([&](const Address&) -> std::unique_ptr<Protocol> {
    return std::make_unique<Reader>(reactor, server, st);
  });
  std::shared_ptr<ListeningPort> port;
  if (kind == Kind::tcp) {
    port = listen_tcp(reactor, 0, server, loopback());
    connect_tcp(reactor, "127.0.0.1", port->port(), client);
  } else {
    const std::string path = "@torsion-sendfile-test-" + std::to_string(::getpid());
    port = listen_unix(reactor, path, server);
    connect_unix(reactor, path, client);
  }
  REQUIRE(wait_for(reactor, [&] { return st.lost && server.lost; }, "both ends to close"));
}

}  // namespace

TEST_CASE("sendfile: a file reaches a slow reader over TCP in partial sends, never read") {
  Reactor reactor;
  const std::size_t size = 6 * 1024 * 1024 + 123;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.chunk = 4096;  // the buffered path's size; regions are set apart
  server.region = 1024 * 1024;
  server.send_buffer = 16 * 1024;  // every 1 MiB region takes many sends
  ReaderState st;
  st.nap = true;
  transfer(reactor, server, st);
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(server.lost->clean());
  CHECK(st.lost->clean());
  CHECK(st.received == size);
  CHECK_FALSE(st.corrupt);
  CHECK(server.reads == 0);                   // the kernel copied the file
  CHECK(server.write_calls > 7);              // 7 regions, most of them partial sends
  CHECK(server.max_buffer <= server.region);  // one region queued at a time
  CHECK(server.max_buffer > server.chunk);
}

TEST_CASE("sendfile: over a Unix socket, with bytes written before and after the file") {
  Reactor reactor;
  const std::size_t size = 3 * 1024 * 1024 + 7;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.before = "<header>";
  server.after = "<trailer>";
  ReaderState st;
  st.skip = server.before.size();
  std::string tail;
  transfer(reactor, server, st, Kind::unix_socket);
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(st.lost->clean());
  CHECK(st.head == "<header>");
  // The trailer follows the file: the pattern check fails exactly on its bytes.
  CHECK(st.received == size + server.after.size());
  CHECK(server.reads == 0);
}

TEST_CASE("sendfile: the peer leaving mid-file ends the transfer (no SIGPIPE)") {
  Reactor reactor;
  PatternFile file(16 * 1024 * 1024);
  FileServer server;
  server.path = file.path;
  ReaderState st;
  st.abort_after = 512 * 1024;
  transfer(reactor, server, st);
  REQUIRE(server.result);
  CHECK(*server.result == error::cancelled);
  REQUIRE(server.lost);
  CHECK_FALSE(server.lost->clean());
  CHECK_FALSE(st.corrupt);
  CHECK(server.reads == 0);
}

TEST_CASE("sendfile: a file that shrinks while being sent closes the connection (EIO)") {
  Reactor reactor;
  const std::size_t size = 32 * 1024 * 1024, cut = 16 * 1024 * 1024;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.length = size;  // promised, as a Content-Length is
  ReaderState st;
  bool truncated = false;
  st.on_progress = [&](std::uint64_t received) {
    if (truncated || received < 256 * 1024) return;
    truncated = true;
    REQUIRE(::truncate(file.path.c_str(), static_cast<off_t>(cut)) == 0);
  };
  transfer(reactor, server, st);
  REQUIRE(truncated);
  REQUIRE(server.lost);
  CHECK(server.lost->is(error::connection_lost));
  CHECK(server.lost->cause() == std::errc::io_error);
  CHECK(server.lost->message().find("file ended") != std::string::npos);
  REQUIRE(server.result);
  CHECK(*server.result == error::cancelled);
  CHECK(st.received == cut);  // everything the file still had, then the close
  CHECK_FALSE(st.corrupt);
}

TEST_CASE("sendfile: a file that grows is followed to its end without a length") {
  Reactor reactor;
  const std::size_t size = 1024 * 1024;
  PatternFile file(size);
  FileServer server;
  server.path = file.path;
  server.chunk = 64 * 1024;
  ReaderState st;
  st.nap = true;
  bool grown = false;
  st.on_progress = [&](std::uint64_t received) {
    if (grown || received < 64 * 1024) return;
    grown = true;
    const std::string more = pattern_stream().bytes(size + 4096).substr(size);
    FILE* f = std::fopen(file.path.c_str(), "ab");
    REQUIRE(f);
    REQUIRE(std::fwrite(more.data(), 1, more.size(), f) == more.size());
    std::fclose(f);
  };
  transfer(reactor, server, st);
  REQUIRE(server.result);
  CHECK_FALSE(*server.result);
  CHECK(st.received == size + 4096);
  CHECK_FALSE(st.corrupt);
}

TEST_CASE("FileSender keeps the buffered path where the transport cannot send files") {
  PatternFile file(300 * 1024);
  testing::StringTransport transport;
  Transport& any = transport;
  CHECK(dynamic_cast<FileWriter*>(&any) == nullptr);
  Protocol protocol;
  transport.connect(protocol);
  FileSender sender(64 * 1024);
  CHECK_THROWS_AS(sender.set_region_size(0), std::invalid_argument);
  std::optional<std::error_code> result;
  int reads = 0;
  sender.begin_transfer(
      transport, std::make_unique<CountingSource>(open_file_source(file.path), reads),
      [&](std::error_code ec) { result = ec; }, 400 * 1024);  // more than the file holds
  // StringTransport asks a pull producer once; each further chunk is asked for here, as a
  // real transport would once its buffer empties.
  for (int i = 0; i < 100 && !result; ++i) sender.resume_producing();
  REQUIRE(result);
  CHECK(*result == std::errc::io_error);  // the source ended before the length
  CHECK(reads > 0);
  CHECK(transport.value() == pattern_stream().bytes(300 * 1024));
}
