// Memory held per pending TLS handshake on a listen_ssl port (a script, not a unit test).
//
// Opens N plain TCP connections to a listen_ssl port in this process and, in the "hello"
// run, sends each the same ClientHello (made once with OpenSSL) and never answers the
// server's flight: N handshakes are then pending on the server, as under a flood of
// clients that stall mid-handshake. In the "idle" run the clients send nothing. Reports
// the heap bytes in use (mallinfo2) and the resident set (/proc/self/statm) the server
// gained, per pending handshake. The client sockets are raw descriptors: their cost is
// in the kernel, not in this process's heap.
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
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
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

// One run: N clients, each sending `hello` (maybe empty). Returns false on failure.
bool run(const char* mode, std::size_t n, const std::string& hello, const Pki& pki) {
  torsion::Reactor reactor;
  torsion::TlsServerOptions so;
  so.certificate_chain_file = pki.cert;
  so.private_key_file = pki.key;
  so.handshake_timeout = 600;
  torsion::TlsServerContext sctx(so);
  torsion::FunctionFactory<> factory(
      [](const torsion::Address&) { return std::make_unique<Never>(); });
  auto port = torsion::listen_ssl(reactor, 0, factory, sctx, "127.0.0.1");
  reactor.run_until([] { return false; }, 0.05);
  malloc_trim(0);
  const std::size_t heap0 = heap_in_use(), rss0 = resident_bytes();

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
  reactor.run_until([] { return false; }, 0.05);
  const double heap = static_cast<double>(heap_in_use() - heap0) / static_cast<double>(n);
  const double rss =
      (static_cast<double>(resident_bytes()) - static_cast<double>(rss0)) / static_cast<double>(n);
  std::printf("%-6s N=%zu  heap %.1f KiB per pending handshake  rss %.1f KiB\n", mode, n,
              heap / 1024, rss / 1024);
  std::fflush(stdout);
  for (int fd : clients) ::close(fd);
  reactor.run_until([&] { return reactor.connection_count() == 0; }, 30);
  port->stop_listening();
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
  return 0;
}
