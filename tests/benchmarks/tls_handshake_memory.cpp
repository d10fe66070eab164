// Memory held per pending TLS handshake on a listen_ssl port (a script, not a unit test).
//
// Opens N plain TCP connections to a listen_ssl port in this process and, in the "hello"
// run, sends each the same ClientHello (made once with OpenSSL) and never answers the
// server's flight: N handshakes are then pending on the server, as under a flood of
// clients that stall mid-handshake. In the "idle" run the clients send nothing. Reports
// the heap bytes in use (mallinfo2) and the resident set (/proc/self/statm) the server
// gained, per pending handshake. The client sockets are raw descriptors: their cost is
// in the kernel, not in this process's heap.
// The "burst" run measures the other end of a connection's life: N TLS clients, in a child
// process so that their memory is not counted, complete the handshake and each send 256
// KiB, which the server echoes; once every echo is back they stay connected and idle, and
// the figure is what the server keeps per idle connection after its burst.
//
//   tls_handshake_memory [N=1000]
//   tls_handshake_memory --peer PORT PID [N=1000]
//
// With --peer, the same N clients (idle, then with the ClientHello) go to a TLS server
// already listening on 127.0.0.1:PORT, and the figure is the resident set that process
// PID gained (tls_handshake_peers.sh runs it against tls_echo_server, nginx and haproxy,
// each started afresh, so that all three are measured the same way from outside).
//
// Uses the public API only, so the same source builds against an older torsion to
// compare (tests/benchmarks/README.md).

#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/fd_watch.hpp"
#include "transports/tls.hpp"

namespace {

struct Pki {
  std::string dir, cert, key;
  bool ok = false;
  Pki() {
    char tmpl[] = "/tmp/torsion-tls-mem-XXXXXX";
    if (!mkdtemp(tmpl)) return;
    dir = tmpl;
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj /CN=localhost -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~Pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

std::size_t heap_in_use() { return mallinfo2().uordblks; }

// The resident set of `pid` ("self" by default).
std::size_t resident_bytes(const std::string& pid = "self") {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen(("/proc/" + pid + "/statm").c_str(), "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// A ClientHello as OpenSSL's client sends it first.
std::string client_hello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  std::string out(BIO_ctrl_pending(wbio), '\0');
  const int n = BIO_read(wbio, out.data(), static_cast<int>(out.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

class Never final : public torsion::Protocol {};

class Echo final : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

constexpr std::size_t kBurst = 256 * 1024;

// A client of the burst run: sends kBurst bytes and counts the echo.
class Burst final : public torsion::Protocol {
 public:
  explicit Burst(std::size_t& done) : done_(done) {}
  void connection_made() override { transport().write(std::string(kBurst, 'b')); }
  void data_received(std::string_view data) override {
    received_ += data.size();
    if (received_ == kBurst) ++done_;
  }

 private:
  std::size_t& done_;
  std::size_t received_ = 0;
};

// A listen_ssl port on 127.0.0.1 whose protocols are `P`, and the heap and resident set
// of this process once it listens (after a short run and malloc_trim).
template <class P>
struct Server {
  torsion::Reactor reactor;
  torsion::TlsServerContext sctx;
  torsion::FunctionFactory<> factory{
      [](const torsion::Address&) { return std::make_unique<P>(); }};
  std::shared_ptr<torsion::ListeningPort> port;
  std::size_t heap0 = 0, rss0 = 0;

  explicit Server(const Pki& pki) : sctx(options(pki)) {
    port = torsion::listen_ssl(reactor, 0, factory, sctx, "127.0.0.1");
    reactor.run_until([] { return false; }, 0.05);
    malloc_trim(0);
    heap0 = heap_in_use();
    rss0 = resident_bytes();
  }
  static torsion::TlsServerOptions options(const Pki& pki) {
    torsion::TlsServerOptions so;
    so.certificate_chain_file = pki.cert;
    so.private_key_file = pki.key;
    so.handshake_timeout = 600;
    return so;
  }
  // Prints what the process gained since it listened, per connection of n.
  void report(const char* mode, std::size_t n, const char* per) {
    reactor.run_until([] { return false; }, 0.05);
    const auto gained = [n](std::size_t now, std::size_t then) {
      return (static_cast<double>(now) - static_cast<double>(then)) / static_cast<double>(n) /
             1024;
    };
    std::printf("%-6s N=%zu  heap %.1f KiB per %s  rss %.1f KiB\n", mode, n,
                gained(heap_in_use(), heap0), per, gained(resident_bytes(), rss0));
    std::fflush(stdout);
  }
  // Stops listening once every connection has ended.
  void stop() {
    reactor.run_until([&] { return reactor.connection_count() == 0; }, 30);
    port->stop_listening();
  }
};

// The child of the burst run: connects n TLS clients, 100 at a time, each echoing kBurst
// bytes; then writes one byte to `ready` and waits, idle, until `quit` is closed.
[[noreturn]] void burst_clients(int port, std::size_t n, int ready, int quit) {
  torsion::Reactor reactor;
  torsion::TlsClientOptions co;
  co.verify_peer = false;
  torsion::TlsClientContext cctx(co);
  std::size_t done = 0;
  torsion::FunctionFactory<torsion::ClientFactory> factory(
      [&done](const torsion::Address&) { return std::make_unique<Burst>(done); });
  std::vector<std::shared_ptr<torsion::Connector>> connectors;
  while (connectors.size() < n) {
    const std::size_t batch = std::min<std::size_t>(100, n - connectors.size());
    for (std::size_t i = 0; i < batch; ++i)
      connectors.push_back(torsion::connect_ssl(reactor, "127.0.0.1", port, factory, cctx));
    if (!reactor.run_until([&] { return done == connectors.size(); }, 120)) {
      std::fprintf(stderr, "burst: the echoes did not all come back\n");
      _exit(1);
    }
  }
  char byte = 'r';
  if (::write(ready, &byte, 1) != 1) _exit(1);
  while (::read(quit, &byte, 1) > 0) {
  }
  _exit(0);
}

// The burst run: N TLS connections that each echoed kBurst bytes, then idle.
bool run_burst(std::size_t n, const Pki& pki) {
  Server<Echo> server(pki);
  int ready[2], quit[2];
  if (::pipe(ready) != 0 || ::pipe(quit) != 0) {
    std::perror("pipe");
    return false;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("fork");
    return false;
  }
  if (child == 0) {
    ::close(ready[0]);
    ::close(quit[1]);
    burst_clients(server.port->port(), n, ready[1], quit[0]);
  }
  ::close(ready[1]);
  ::close(quit[0]);
  // The loop watches the pipe: run_until looks at its condition only after an event.
  char byte = 0;
  bool echoed = false;
  torsion::add_reader(server.reactor, ready[0], [&] {
    echoed = ::read(ready[0], &byte, 1) == 1;
    torsion::remove_reader(server.reactor, ready[0]);
  });
  server.reactor.run_until([&] { return echoed; }, 600);
  torsion::remove_reader(server.reactor, ready[0]);
  const bool ok = echoed && server.reactor.connection_count() == n;
  if (ok)
    server.report("burst", n, "idle connection after a 256 KiB echo");
  else
    std::fprintf(stderr, "burst: the clients did not all finish\n");
  ::close(quit[1]);
  ::close(ready[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  server.stop();
  return ok;
}

// Opens n plain TCP clients of 127.0.0.1:port, each sending `hello` unless it is empty;
// calls `every_100` after each hundred. False (said on stderr) if a socket call fails.
template <class F>
bool open_clients(int port, std::size_t n, const std::string& hello, std::vector<int>& clients,
                  F every_100) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      std::perror("client socket");
      return false;
    }
    clients.push_back(fd);
    if (!hello.empty() && ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
                              static_cast<ssize_t>(hello.size())) {
      std::perror("send");
      return false;
    }
    if (clients.size() % 100 == 0) every_100();
  }
  return true;
}

// Whether the server's flight is waiting in every client's socket.
bool all_answered(const std::vector<int>& clients) {
  for (int fd : clients) {
    int ready = 0;
    if (::ioctl(fd, FIONREAD, &ready) != 0 || ready == 0) return false;
  }
  return true;
}

// The peer runs: what process `pid`, listening on 127.0.0.1:port, gained in resident set
// per connection of n, first with n idle clients and then with n that each sent the
// ClientHello (the same n connections, so the idle figure is included).
bool run_peer(int port, const std::string& pid, std::size_t n, const std::string& hello) {
  const auto settle = [&] {  // until the resident set is unchanged for 300 ms (<= 20 s)
    std::size_t last = resident_bytes(pid);
    for (int same = 0, tries = 0; same < 3 && tries < 200; ++tries) {
      ::usleep(100 * 1000);
      const std::size_t now = resident_bytes(pid);
      same = now == last ? same + 1 : 0;
      last = now;
    }
    return last;
  };
  const std::size_t rss0 = settle();
  std::vector<int> clients;
  if (!open_clients(port, n, "", clients, [] {})) return false;
  const std::size_t idle = settle();
  for (int fd : clients)
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(hello.size())) {
      std::perror("send");
      return false;
    }
  for (int tries = 0; !all_answered(clients); ++tries) {
    if (tries == 600) {
      std::fprintf(stderr, "peer: not every ClientHello was answered in 60 s\n");
      return false;
    }
    ::usleep(100 * 1000);
  }
  const std::size_t hello_rss = settle();
  const auto per = [n](std::size_t now, std::size_t then) {
    return (static_cast<double>(now) - static_cast<double>(then)) / static_cast<double>(n) / 1024;
  };
  std::printf("peer   N=%zu  rss %.1f KiB per idle connection, %.1f KiB per pending handshake\n",
              n, per(idle, rss0), per(hello_rss, rss0));
  std::fflush(stdout);
  for (int fd : clients) ::close(fd);
  return true;
}

bool run(const char* mode, std::size_t n, const std::string& hello, const Pki& pki) {
  Server<Never> server(pki);
  torsion::Reactor& reactor = server.reactor;
  const auto& port = server.port;

  std::vector<int> clients;
  const bool opened = open_clients(port->port(), n, hello, clients, [&] {
    // let the server accept before the backlog fills
    reactor.run_until([&] { return reactor.connection_count() >= clients.size(); }, 10);
  });
  if (!opened) return false;
  // Every connection accepted and, with a ClientHello, answered.
  const auto settled = [&] {
    return reactor.connection_count() >= n && (hello.empty() || all_answered(clients));
  };
  if (!reactor.run_until(settled, 60)) {
    std::fprintf(stderr, "%s: the server did not take every connection\n", mode);
    return false;
  }
  server.report(mode, n, "pending handshake");
  for (int fd : clients) ::close(fd);
  server.stop();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bool peer = argc > 1 && std::string_view(argv[1]) == "--peer";
  if (peer && argc < 4) {
    std::fprintf(stderr, "usage: %s --peer PORT PID [N]\n", argv[0]);
    return 2;
  }
  const int first_n = peer ? 4 : 1;
  const std::size_t n = argc > first_n ? std::strtoul(argv[first_n], nullptr, 10) : 1000;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(2 * n + 256));
  ::setrlimit(RLIMIT_NOFILE, &rl);
  if (peer) return run_peer(std::atoi(argv[2]), argv[3], n, client_hello()) ? 0 : 1;
  torsion::set_log_level(torsion::LogLevel::error);  // a thousand failed handshakes at the end
  Pki pki;
  if (!pki.ok) {
    std::fprintf(stderr, "openssl could not make a certificate\n");
    return 1;
  }
  if (!run("idle", n, "", pki)) return 1;
  if (!run("hello", n, client_hello(), pki)) return 1;
  if (!run_burst(n, pki)) return 1;
  return 0;
}
