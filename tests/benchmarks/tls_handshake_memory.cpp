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

std::size_t resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
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

bool run(const char* mode, std::size_t n, const std::string& hello, const Pki& pki) {
  Server<Never> server(pki);
  torsion::Reactor& reactor = server.reactor;
  const auto& port = server.port;

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port->port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> clients;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      std::perror("client socket");
      return false;
    }
    if (!hello.empty() && ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
                              static_cast<ssize_t>(hello.size())) {
      std::perror("send");
      return false;
    }
    clients.push_back(fd);
    if (clients.size() % 100 == 0)  // let the server accept before the backlog fills
      reactor.run_until([&] { return reactor.connection_count() >= clients.size(); }, 10);
  }
  // Every connection accepted and, with a ClientHello, answered (the server's flight is
  // waiting in every client's socket).
  const auto settled = [&] {
    if (reactor.connection_count() < n) return false;
    if (hello.empty()) return true;
    for (int fd : clients) {
      int ready = 0;
      if (::ioctl(fd, FIONREAD, &ready) != 0 || ready == 0) return false;
    }
    return true;
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
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(2 * n + 256));
  ::setrlimit(RLIMIT_NOFILE, &rl);
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
