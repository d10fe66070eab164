#pragma once
// Sending a file from a server to a reader over a real TCP or Unix connection, for the
// FileSender tests: a temporary file holding the test pattern, a server that sends it with
// a FileSender (and counts what it did), and a reader that checks every byte, slowly if
// asked. Names in torsion::test.

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "framework/file_sender.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/wait.hpp"
#include "transports/detail/stream_engine.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

namespace torsion::test {

// A temporary file holding the first `size` bytes of the test pattern.
struct PatternFile {
  std::string path;
  explicit PatternFile(std::size_t size) {
    char name[] = "/tmp/torsion-pattern-file-XXXXXX";
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
  std::optional<std::uint64_t> size_at_open() const noexcept override {
    return inner->size_at_open();
  }
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
  std::optional<std::size_t> buffered_after_begin;  // buffer_size() once begin_transfer returns
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
        s.buffered_after_begin = transport().buffer_size();
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
inline void transfer(Reactor& reactor, FileServer& server, ReaderState& st, Kind kind = Kind::tcp) {
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

}  // namespace torsion::test
