// The transport conformance suite (Twisted's ConnectionTestsMixin): every promise here is
// written once and run over each kind of connected pair, TCP, Unix, TLS (listen_ssl and
// connect_ssl), start_tls over TCP, stdio over a pipe each way, pipes through a child
// process each way, and the in-memory Loopback, so that the kinds cannot
// drift apart. A kind makes a server and a client whose protocols record every event
// (tests/support/recording.hpp, which also checks made < data < lost, each once) and
// drives them until a condition holds: the reactor for the socket kinds (with the usual
// deadline), the pump for Loopback. To add a kind, write a struct like TcpKind and add
// it to CONFORMANCE_KINDS.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "framework/protocol.hpp"
#include "framework/testing/loopback.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/stdio.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"
#include "tests/support/tls_certs.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

extern char** environ;

namespace {

// What every kind shares: the two recording factories, the first connection's records,
// and driving by the reactor.
struct SocketKind {
  Reactor reactor;
  RecordingFactory server;
  RecordingClientFactory client;
  std::shared_ptr<ListeningPort> port;
  std::shared_ptr<Connector> connector;

  Record& srv() {
    REQUIRE(!server.records.empty());
    return server.records.front();
  }
  Record& cli() {
    REQUIRE(!client.records.empty());
    return client.records.front();
  }
  // Drives until `done` holds; fails the test at the deadline.
  void drive(const std::function<bool()>& done, const char* what) {
    REQUIRE(wait_for(reactor, done, what));
  }
  // Stops listening; no connection may be left.
  void finish() {
    if (port) port->stop_listening();
    reactor.run_until([&] { return reactor.connection_count() == 0; }, 5);
    CHECK(reactor.connection_count() == 0);
  }
  // Drives until both sides are made (and, for TLS, the handshake is done).
  void wait_made() {
    drive([&] { return !server.records.empty() && !client.records.empty() &&
                       server.records.front().made == 1 && client.records.front().made == 1; },
          "both sides to be connected");
  }
};

struct TcpKind : SocketKind {
  static constexpr const char* name = "tcp";
  static constexpr bool resets = true;  // abort and errors reach the peer as a reset
  void start() {
    port = listen_tcp(reactor, 0, server, test::loopback());
    connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
    wait_made();
  }
};

struct UnixKind : SocketKind {
  static constexpr const char* name = "unix";
  static constexpr bool resets = false;  // a Unix socket has no reset: the peer sees its end
  void start() {
    static int counter = 0;
    const std::string path =
        "@torsion-conformance-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    port = listen_unix(reactor, path, server);
    connector = connect_unix(reactor, path, client);
    wait_made();
  }
};

struct TlsKind : SocketKind {
  static constexpr const char* name = "tls";
  static constexpr bool resets = true;
  test::TestPki pki;
  std::optional<TlsServerContext> sctx;
  std::optional<TlsClientContext> cctx;
  void start() {
    sctx.emplace(test::server_options(pki));
    cctx.emplace(test::client_options(pki));
    port = listen_ssl(reactor, 0, server, *sctx, "127.0.0.1");
    connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, *cctx);
    wait_made();
  }
};

// TCP, then start_tls on both sides first thing in connection_made: every byte the test
// writes goes encrypted (writes made before the handshake is done are held).
struct StartTlsKind : SocketKind {
  static constexpr const char* name = "start_tls";
  static constexpr bool resets = true;
  test::TestPki pki;
  std::optional<TlsServerContext> sctx;
  std::optional<TlsClientContext> cctx;
  FunctionFactory<Factory> sfactory{[this](const Address&) {
    return build(server.records.emplace_back(), server.setup,
                 [this](Transport& t) { start_tls(t, *sctx); });
  }};
  FunctionFactory<ClientFactory> cfactory{[this](const Address&) {
    return build(client.records.emplace_back(), client.setup,
                 [this](Transport& t) { start_tls(t, *cctx, "localhost"); });
  }};

  // A recording protocol (set up as the factory's setup says) that calls `begin` on its
  // transport before its own connection_made behaviour, under the with_start_tls layer.
  static std::unique_ptr<Protocol> build(Record& r, const std::function<void(Record&)>& setup,
                                         std::function<void(Transport&)> begin) {
    if (setup) setup(r);
    r.on_made = [begin = std::move(begin), then = r.on_made](Record& rr) {
      begin(*rr.transport);
      if (then) then(rr);
    };
    return with_start_tls(std::make_unique<test::Recording>(r));
  }

  void start() {
    sctx.emplace(test::server_options(pki));
    cctx.emplace(test::client_options(pki));
    port = listen_tcp(reactor, 0, sfactory, test::loopback());
    connector = connect_tcp(reactor, "127.0.0.1", port->port(), cfactory);
    wait_made();
  }
};

// Two pipes with a stdio transport at each end (connect_stdio given other descriptors):
// the engine as it runs on this process's stdin and stdout. A pipe has no reset: an
// abort reaches the peer as its end of input.
struct StdioKind : SocketKind {
  static constexpr const char* name = "stdio";
  static constexpr bool resets = false;
  std::shared_ptr<Transport> server_end, client_end;

  // Each direction: the read end and the write end of a pipe.
  struct Pipe {
    int read = -1, write = -1;
    Pipe() {
      int fds[2];
      REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
      read = fds[0];
      write = fds[1];
    }
    ~Pipe() { close(); }
    void close() {
      for (int* fd : {&read, &write})
        if (*fd >= 0) ::close(std::exchange(*fd, -1));
    }
  };

  // The server reads `to_server` and writes `to_client`; the client the other way round.
  void connect(int server_in, int server_out, int client_in, int client_out) {
    server_end = connect_stdio(reactor, server.build_protocol(Address()),
                               StdioOptions{server_in, server_out});
    client_end = connect_stdio(reactor, client.build_protocol(Address()),
                               StdioOptions{client_in, client_out});
    wait_made();
  }
  void start() {
    Pipe to_server, to_client;
    connect(to_server.read, to_client.write, to_client.read, to_server.write);
  }  // connect_stdio works on duplicates: the pipes' own descriptors close here
};

// As stdio, with a child process in each direction: every byte goes through a child's
// stdin and stdout pipes (a `cat`), and each end is the other's child's output. A child
// passes the end of its input on as the end of its output, and exits.
struct ChildPipesKind : StdioKind {
  static constexpr const char* name = "child pipes";
  std::vector<pid_t> children;

  // Runs `cat` reading `in` and writing `out`.
  void relay(int in, int out) {
    posix_spawn_file_actions_t actions;
    REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
    posix_spawn_file_actions_adddup2(&actions, in, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    pid_t pid = -1;
    char cat[] = "cat";
    char* argv[] = {cat, nullptr};
    const int rc = posix_spawnp(&pid, "cat", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    children.push_back(pid);
  }
  void start() {
    Pipe client_out, server_in, server_out, client_in;
    relay(client_out.read, server_in.write);  // client -> cat -> server
    relay(server_out.read, client_in.write);  // server -> cat -> client
    connect(server_in.read, server_out.write, client_in.read, client_out.write);
  }
  // Once both ends are closed every child has seen the end of its input (or a broken
  // pipe) and exits; each is waited for through a pidfd, with a deadline.
  void finish() {
    StdioKind::finish();
    for (const pid_t pid : children) {
      const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      REQUIRE(pidfd >= 0);
      ::pollfd p{pidfd, POLLIN, 0};
      CHECK(::poll(&p, 1, static_cast<int>(test::kDeadline * 1000)) == 1);
      ::close(pidfd);
      int status = 0;
      CHECK(::waitpid(pid, &status, WNOHANG) == pid);
    }
    children.clear();
  }
};

// The in-memory pair: connected at once, driven by the pump.
struct LoopbackKind {
  static constexpr const char* name = "loopback";
  static constexpr bool resets = true;
  RecordingFactory server;
  RecordingClientFactory client;
  std::optional<testing::Loopback> pair;

  void start() {
    pair.emplace(client.build_protocol(Address()), server.build_protocol(Address()));
  }
  Record& srv() { return server.records.front(); }
  Record& cli() { return client.records.front(); }
  void drive(const std::function<bool()>& done, const char* what) {
    while (!done() && pair->pump()) {
    }
    INFO("waiting for ", what);
    REQUIRE(done());
  }
  void finish() { CHECK(pair->finished()); }
};

std::string upcase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// A request of about 300 KiB, more than the kernel buffers take at once.
std::string long_request() {
  std::string request;
  for (int i = 0; request.size() < 300 * 1024; ++i) request += "line " + std::to_string(i) + "\n";
  return request;
}

// Bytes that show loss or reordering: byte i depends on i.
std::string pattern(std::size_t size, std::size_t salt = 0) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + salt * 13 + i / 251) % 26);
  return s;
}

// A streaming producer that writes `chunk`-sized pieces of a pattern while it is not
// paused, up to `total` bytes, then unregisters and closes. It records the transport's
// buffer at each pause and resume, to check them against the marks.
class MarkedProducer : public Producer {
 public:
  MarkedProducer(Transport& t, std::size_t total, std::size_t chunk)
      : t_(t), bytes_(pattern(total, 1)), chunk_(chunk) {}
  void pause_producing() override {
    paused_ = true;
    ++pauses;
    min_buffer_at_pause = std::min(min_buffer_at_pause, t_.buffer_size());
  }
  void resume_producing() override {
    paused_ = false;
    ++resumes;
    max_buffer_at_resume = std::max(max_buffer_at_resume, t_.buffer_size());
    produce();
  }
  void stop_producing() override { stopped = true; }
  void produce() {
    while (!paused_ && !done_ && sent < bytes_.size()) {
      const std::size_t n = std::min(chunk_, bytes_.size() - sent);
      t_.write(std::string_view(bytes_).substr(sent, n));
      sent += n;
    }
    if (sent == bytes_.size() && !done_) {
      done_ = true;
      t_.unregister_producer();
      t_.lose_connection();
    }
  }

  int pauses = 0, resumes = 0;
  bool stopped = false;
  std::size_t sent = 0;
  std::size_t min_buffer_at_pause = static_cast<std::size_t>(-1);
  std::size_t max_buffer_at_resume = 0;

 private:
  Transport& t_;
  std::string bytes_;
  std::size_t chunk_;
  bool paused_ = false;
  bool done_ = false;
};

}  // namespace

#define CONFORMANCE_KINDS \
  TcpKind, UnixKind, TlsKind, StartTlsKind, StdioKind, ChildPipesKind, LoopbackKind

TEST_CASE_TEMPLATE("conformance: made, data in order, then lost once on each side, cleanly",
                   K, CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  K k;
  k.server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) {
      rr.transport->write(d);
      if (rr.received.size() == 5) rr.transport->lose_connection();
    };
  };
  k.client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("hello"); }; };
  k.start();
  k.drive([&] { return k.srv().done() && k.cli().done(); }, "both sides to close");
  CHECK(k.srv().received == "hello");
  CHECK(k.cli().received == "hello");
  CHECK(k.srv().reason->clean());
  CHECK(k.cli().reason->clean());
  CHECK(k.srv().transport == nullptr);
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: half-close by the client, the answer still arrives", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  const std::string request = long_request();
  K k;
  k.server.setup = [](Record& r) { r.keep_open_on_eof = true; };
  k.client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      rr.transport->write(request);
      rr.transport->lose_write_connection();
      rr.transport->write("dropped: written after lose_write_connection");
      rr.transport->lose_write_connection();  // idempotent
      CHECK(rr.transport->connected());       // reading goes on
    };
  };
  k.start();
  k.drive([&] { return k.srv().eofs == 1; }, "the server to hear the end");
  Record& s = k.srv();
  CHECK(s.received == request);  // queued bytes went before the end, nothing after
  CHECK(s.lost == 0);
  // The server answers after the client's end, then ends: its write side only, or all.
  s.transport->write(upcase(request));
  SUBCASE("then lose_write_connection") { s.transport->lose_write_connection(); }
  SUBCASE("then lose_connection") { s.transport->lose_connection(); }
  k.drive([&] { return k.cli().done() && s.done(); }, "both sides to end");
  Record& c = k.cli();
  CHECK(c.received == upcase(request));  // read after our own end
  CHECK(c.eofs == 1);  // told even though its own write side was already shut
  REQUIRE(c.reason);
  REQUIRE(s.reason);
  CHECK(c.reason->clean());
  CHECK(s.reason->clean());
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: half-close by the server, the client keeps writing", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  const std::string greeting = pattern(300000);
  K k;
  k.server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      rr.transport->write(greeting);  // queued: the end goes after the bytes
      rr.transport->lose_write_connection();
      CHECK(rr.transport->connected());  // reading goes on
    };
  };
  k.client.setup = [](Record& r) { r.keep_open_on_eof = true; };
  k.start();
  k.drive([&] { return k.cli().eofs == 1; }, "the client to hear the end");
  Record& c = k.cli();
  CHECK(c.received == greeting);
  CHECK(c.lost == 0);
  for (int i = 0; i < 100; ++i) c.transport->write("reply ");
  SUBCASE("then lose_write_connection") {
    c.transport->lose_write_connection();  // both sides half-closed: then both done
  }
  SUBCASE("then lose_connection") { c.transport->lose_connection(); }
  k.drive([&] { return c.done() && k.srv().done(); }, "the end");
  Record& s = k.srv();
  CHECK(s.received.size() == 600);
  CHECK(s.eofs == 1);
  REQUIRE(s.reason);
  REQUIRE(c.reason);
  CHECK(s.reason->clean());
  CHECK(c.reason->clean());
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: lose_connection sends everything queued first", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  const std::string big = pattern(4 << 20, 3);
  K k;
  k.server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      rr.transport->write(big);
      rr.transport->lose_connection();
      rr.transport->write("dropped: written after lose_connection");
      CHECK_FALSE(rr.transport->connected());
    };
  };
  k.start();
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "both sides to close");
  CHECK(k.cli().received.size() == big.size());
  CHECK(k.cli().received == big);
  CHECK(k.cli().reason->clean());
  CHECK(k.srv().reason->clean());
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: tiny and large writes arrive whole and in order", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  const std::string large = pattern(1 << 20, 5);
  std::string expected;
  for (int i = 0; i < 1000; ++i) expected += static_cast<char>('0' + i % 10);
  expected += large;
  for (int i = 0; i < 1000; ++i) expected += static_cast<char>('A' + i % 26);
  K k;
  k.client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      for (int i = 0; i < 1000; ++i) rr.transport->write(std::string(1, static_cast<char>('0' + i % 10)));
      rr.transport->write(std::string(large));  // moved in
      rr.transport->write("");                  // an empty write is nothing
      for (int i = 0; i < 1000; ++i) rr.transport->write(std::string(1, static_cast<char>('A' + i % 26)));
      rr.transport->lose_connection();
    };
  };
  k.start();
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "both sides to close");
  CHECK(k.srv().received.size() == expected.size());
  CHECK(k.srv().received == expected);
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: abort drops the queue; the peer sees an unclean end", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  K k;
  k.server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received != "go") return;
      rr.transport->write(pattern(8 << 20));  // more than the kernel takes at once
      rr.transport->abort_connection();
      CHECK_FALSE(rr.transport->connected());
      rr.transport->abort_connection();  // idempotent
    };
  };
  k.start();
  k.cli().transport->write("go");
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "both sides to close");
  CHECK(k.srv().reason->is(error::connection_aborted));
  CHECK(k.cli().reason->clean() == !K::resets);
  CHECK(k.cli().received.size() < std::size_t{8} << 20);  // the queue was dropped
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: an exception in data_received aborts that connection only",
                   K, CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  K k;
  k.server.setup = [](Record& r) {
    r.on_data = [](Record&, std::string_view) { throw std::runtime_error("boom"); };
  };
  k.start();
  k.cli().transport->write("x");
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "both sides to close");
  CHECK(k.srv().reason->is(error::callback_threw));
  CHECK(k.cli().reason->clean() == !K::resets);
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: pause and resume reading keep the bytes, in order", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  K k;
  k.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->pause_producing();
      rr.transport->write("ready");
    };
  };
  k.start();
  Record& s = k.srv();
  Record& c = k.cli();
  k.drive([&] { return c.received == "ready"; }, "the server to say it is paused");
  c.transport->write("first ");
  c.transport->write("second");
  c.transport->lose_write_connection();
  k.drive([&] { return c.transport == nullptr || c.transport->buffer_size() == 0; },
          "the client's bytes to leave");
  CHECK(s.received.empty());  // paused: nothing delivered, not even the end
  CHECK(s.eofs == 0);
  s.transport->resume_producing();
  k.drive([&] { return s.done() && c.done(); }, "both sides to close");
  CHECK(s.received == "first second");
  CHECK(s.eofs == 1);
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: a streaming producer stays within both water marks", K,
                   CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  constexpr std::size_t kHigh = 64 * 1024, kLow = 16 * 1024, kTotal = 16 << 20;
  std::unique_ptr<MarkedProducer> producer;
  K k;
  k.client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->pause_producing(); };  // read nothing yet
  };
  k.server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      rr.transport->set_write_buffer_limits(kHigh, kLow);
      producer = std::make_unique<MarkedProducer>(*rr.transport, kTotal, 8 * 1024);
      rr.transport->register_producer(*producer, /*streaming=*/true);
      producer->produce();
    };
  };
  k.start();
  k.drive([&] { return producer && producer->pauses > 0; }, "the producer to be paused");
  CHECK(producer->sent < kTotal);
  REQUIRE(k.cli().transport != nullptr);
  k.cli().transport->resume_producing();
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "everything to arrive");
  CHECK(producer->sent == kTotal);
  CHECK(producer->resumes > 0);
  CHECK(producer->min_buffer_at_pause > kHigh);  // paused only above the high mark
  CHECK(producer->max_buffer_at_resume <= kLow);  // resumed only at the low mark
  CHECK_FALSE(producer->stopped);
  CHECK(k.cli().received.size() == kTotal);
  CHECK(k.cli().received == pattern(kTotal, 1));
  CHECK(k.cli().reason->clean());
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: a pull producer is asked for more only when the buffer is empty",
                   K, CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  constexpr std::size_t kChunk = 64 * 1024, kTotal = 4 << 20;
  const std::string bytes = pattern(kTotal, 2);
  // Writes one chunk per resume_producing, then unregisters and closes.
  struct Pull : Producer {
    Transport* t = nullptr;
    const std::string* bytes = nullptr;
    std::size_t sent = 0;
    int asked = 0;
    std::size_t max_buffer_when_asked = 0;
    bool stopped = false;
    void resume_producing() override {
      ++asked;
      max_buffer_when_asked = std::max(max_buffer_when_asked, t->buffer_size());
      t->write(std::string_view(*bytes).substr(sent, kChunk));
      sent += kChunk;
      if (sent == bytes->size()) {
        t->unregister_producer();
        t->lose_connection();
      }
    }
    void pause_producing() override {}
    void stop_producing() override { stopped = true; }
  } pull;
  pull.bytes = &bytes;
  K k;
  k.server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      pull.t = rr.transport;
      rr.transport->register_producer(pull, /*streaming=*/false);
    };
  };
  k.start();
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "everything to arrive");
  CHECK(pull.sent == kTotal);
  CHECK(pull.asked == static_cast<int>(kTotal / kChunk));
  CHECK(pull.max_buffer_when_asked == 0);
  CHECK_FALSE(pull.stopped);  // unregistered before the end
  CHECK(k.cli().received == bytes);
  CHECK(k.cli().reason->clean());
  CHECK(k.srv().reason->clean());
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: a peer that resets ends a writer's connection, once, not cleanly",
                   K, CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  constexpr std::size_t kTotal = 32 << 20;
  std::unique_ptr<MarkedProducer> producer;
  K k;
  k.server.setup = [&](Record& r) {
    r.on_data = [&](Record& rr, std::string_view) {
      if (rr.received != "go") return;
      // Far more than the peer will read: it is paused at the high mark, then reset.
      producer = std::make_unique<MarkedProducer>(*rr.transport, kTotal, 8 * 1024);
      rr.transport->register_producer(*producer, /*streaming=*/true);
      producer->produce();
    };
  };
  k.client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("go"); };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() >= 64 * 1024) rr.transport->abort_connection();
    };
  };
  k.start();
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "both sides to close");
  CHECK(k.cli().reason->is(error::connection_aborted));
  REQUIRE(k.srv().reason);
  CHECK_FALSE(k.srv().reason->clean());  // a reset, or a write to a closed pipe
  CHECK(k.srv().lost == 1);
  REQUIRE(producer);
  CHECK(producer->stopped);  // told, as the connection ended with it registered
  CHECK(producer->sent < kTotal);
  k.finish();
}

TEST_CASE_TEMPLATE("conformance: an exception in connection_made aborts that connection only",
                   K, CONFORMANCE_KINDS) {
  const std::string kind = K::name;
  CAPTURE(kind);
  K k;
  k.server.setup = [](Record& r) {
    r.on_made = [](Record&) { throw std::runtime_error("boom in connection_made"); };
  };
  k.start();
  k.drive([&] { return k.cli().done() && k.srv().done(); }, "both sides to close");
  CHECK(k.srv().reason->is(error::callback_threw));
  CHECK(k.cli().reason->clean() == !K::resets);
  k.finish();
}
