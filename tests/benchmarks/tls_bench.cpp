// TLS small writes (Google Benchmark): a server answers each one-byte request with 1000
// writes of 32 bytes made inside one data_received, over listen_ssl/connect_ssl and over
// start_tls: the same TLS layer (OpenSSL over the stream engine) either way, set up by
// the port and connector or by start_tls. And a TLS echo of 64 B and of 1 MiB over
// listen_ssl/connect_ssl (BM_TlsEcho_ListenSsl/64 and /1048576). Both ends run on one
// reactor in this process.
//
// Counters, per burst of 1000 writes:
//   records  TLS records the client received (its data_received calls: each record is
//            decrypted and delivered alone);
//   sends    send system calls the server's TCP transport made (start_tls only: read
//            from its WriteCounter, which the with_start_tls wrapper's transport() is).
//
// The certificate is made with the openssl command at start (a throwaway self-signed one;
// the client does not verify it).

#include <stdlib.h>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/detail/stream_engine.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

namespace {

constexpr std::size_t kWrites = 1000;
constexpr std::size_t kWriteSize = 32;
constexpr std::size_t kBurst = kWrites * kWriteSize;

struct Pki {
  std::string dir, cert, key;
  bool ok = false;
  Pki() {
    char tmpl[] = "/tmp/torsion-tls-bench-XXXXXX";
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

const Pki& pki() {
  static Pki p;
  return p;
}

// The server: 1000 small writes for every request byte.
class Burst final : public torsion::Protocol {
 public:
  void data_received(std::string_view d) override {
    for (std::size_t r = 0; r < d.size(); ++r)
      for (std::size_t i = 0; i < kWrites; ++i) transport().write(std::string_view(chunk_));
  }

 private:
  std::string chunk_ = std::string(kWriteSize, 'x');
};

// The client: counts bytes and deliveries (records).
class Counter final : public torsion::Protocol {
 public:
  explicit Counter(Counter** slot) : slot_(slot) {}
  void connection_made() override { *slot_ = this; }
  void connection_lost(const torsion::Reason&) override { *slot_ = nullptr; }
  void data_received(std::string_view d) override {
    bytes += d.size();
    ++deliveries;
  }
  std::size_t bytes = 0;
  std::size_t deliveries = 0;

 private:
  Counter** slot_;
};

// Runs bursts: one request byte, then the reactor until the whole answer is in.
template <class Sends>
void run_bursts(benchmark::State& state, torsion::Reactor& reactor, Counter*& client,
                Sends sends) {
  double records = 0, sent = 0;
  for (auto _ : state) {
    const std::size_t bytes = client->bytes, deliveries = client->deliveries;
    const std::uint64_t calls = sends();
    client->transport().write("?");
    reactor.run_until([&] { return client->bytes - bytes >= kBurst; }, 10);
    if (client->bytes - bytes != kBurst) {
      state.SkipWithError("the answer did not arrive");
      return;
    }
    records += static_cast<double>(client->deliveries - deliveries);
    sent += static_cast<double>(sends() - calls);
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["records"] = records / n;
  state.counters["sends"] = sent / n;
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(kBurst));
}

// A listen_ssl server whose protocols are `Server`, and one connect_ssl client (a Counter)
// on the same reactor; ok() says whether the connection is up.
template <class Server>
struct ListenSslPair {
  torsion::Reactor reactor;
  std::optional<torsion::TlsServerContext> sctx;
  std::optional<torsion::TlsClientContext> cctx;
  torsion::FunctionFactory<> sfactory{
      [](const torsion::Address&) { return std::make_unique<Server>(); }};
  Counter* client = nullptr;
  torsion::FunctionFactory<torsion::ClientFactory> cfactory{
      [this](const torsion::Address&) { return std::make_unique<Counter>(&client); }};
  std::shared_ptr<torsion::ListeningPort> port;
  std::shared_ptr<torsion::Connector> connector;

  explicit ListenSslPair(benchmark::State& state) {
    if (!pki().ok) {
      state.SkipWithError("openssl could not make a certificate");
      return;
    }
    torsion::TlsServerOptions so;
    so.certificate_chain_file = pki().cert;
    so.private_key_file = pki().key;
    sctx.emplace(so);
    torsion::TlsClientOptions co;
    co.verify_peer = false;
    cctx.emplace(co);
    port = torsion::listen_ssl(reactor, 0, sfactory, *sctx, "127.0.0.1");
    connector = torsion::connect_ssl(reactor, "127.0.0.1", port->port(), cfactory, *cctx);
    reactor.run_until([&] { return client != nullptr; }, 10);
    if (!client) state.SkipWithError("no connection");
  }
  ~ListenSslPair() {
    if (client) client->transport().abort_connection();
    if (port) port->stop_listening();
    reactor.run_until([&] { return reactor.connection_count() == 0; }, 5);
  }
  bool ok() const { return client != nullptr; }
};

void BM_TlsSmallWrites_ListenSsl(benchmark::State& state) {
  ListenSslPair<Burst> pair(state);
  if (!pair.ok()) return;
  run_bursts(state, pair.reactor, pair.client, [] { return std::uint64_t{0}; });
}
BENCHMARK(BM_TlsSmallWrites_ListenSsl);

// The server of the echo: what it reads, it writes back.
class Echo final : public torsion::Protocol {
 public:
  void data_received(std::string_view d) override { transport().write(d); }
};

// TLS echo over listen_ssl/connect_ssl: the client writes state.range(0) bytes and the
// reactor runs until they are all back (both ends' TLS work is in the time): 64 B for a
// request and its answer, 1 MiB for bulk transfer (records of 16 KiB, reads of 128 KiB).
void BM_TlsEcho_ListenSsl(benchmark::State& state) {
  ListenSslPair<Echo> pair(state);
  if (!pair.ok()) return;
  const std::string message(static_cast<std::size_t>(state.range(0)), 'e');
  for (auto _ : state) {
    const std::size_t before = pair.client->bytes;
    pair.client->transport().write(message);
    pair.reactor.run_until([&] { return pair.client->bytes - before >= message.size(); }, 10);
    if (pair.client->bytes - before != message.size()) {
      state.SkipWithError("the echo did not arrive");
      return;
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<long long>(message.size()));
}
BENCHMARK(BM_TlsEcho_ListenSsl)->Arg(64)->Arg(1 << 20);

// start_tls at once, in connection_made, on both sides.
template <class Inner>
class Starter final : public torsion::Protocol {
 public:
  Starter(std::unique_ptr<Inner> inner, std::function<void(torsion::Transport&)> start)
      : inner_(std::move(inner)), start_(std::move(start)) {}
  void connection_made() override {
    start_(transport());
    inner_->make_connection(transport());
  }
  void data_received(std::string_view d) override { inner_->data_received(d); }
  void connection_lost(const torsion::Reason& r) override { inner_->end_connection(r); }

 private:
  std::unique_ptr<Inner> inner_;
  std::function<void(torsion::Transport&)> start_;
};

void BM_TlsSmallWrites_StartTls(benchmark::State& state) {
  if (!pki().ok) {
    state.SkipWithError("openssl could not make a certificate");
    return;
  }
  torsion::Reactor reactor;
  torsion::TlsServerOptions so;
  so.certificate_chain_file = pki().cert;
  so.private_key_file = pki().key;
  torsion::TlsServerContext sctx(so);
  torsion::TlsClientOptions co;
  co.verify_peer = false;
  torsion::TlsClientContext cctx(co);
  torsion::Protocol* server_wrapper = nullptr;
  torsion::FunctionFactory<> sfactory([&](const torsion::Address&) {
    auto w = torsion::with_start_tls(std::make_unique<Starter<Burst>>(
        std::make_unique<Burst>(), [&](torsion::Transport& t) { torsion::start_tls(t, sctx); }));
    server_wrapper = w.get();
    return w;
  });
  torsion::TcpListenOptions lo;
  lo.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, sfactory, lo);
  Counter* client = nullptr;
  torsion::FunctionFactory<torsion::ClientFactory> cfactory([&](const torsion::Address&) {
    return torsion::with_start_tls(std::make_unique<Starter<Counter>>(
        std::make_unique<Counter>(&client),
        [&](torsion::Transport& t) { torsion::start_tls(t, cctx, "localhost"); }));
  });
  auto connector = torsion::connect_tcp(reactor, "127.0.0.1", port->port(), cfactory);
  reactor.run_until([&] { return client != nullptr && server_wrapper != nullptr; }, 10);
  if (!client || !server_wrapper) {
    state.SkipWithError("no connection");
    return;
  }
  auto* counter = dynamic_cast<torsion::detail::WriteCounter*>(&server_wrapper->transport());
  if (!counter) {
    state.SkipWithError("the server's TCP transport has no WriteCounter");
    return;
  }
  run_bursts(state, reactor, client, [counter] { return counter->write_calls; });
  client->transport().abort_connection();
  port->stop_listening();
  reactor.run_until([&] { return reactor.connection_count() == 0; }, 5);
}
BENCHMARK(BM_TlsSmallWrites_StartTls);

}  // namespace

BENCHMARK_MAIN();
