#pragma once
// What the TLS test files share: a server on 127.0.0.1 and a client (TlsFixture), an echo,
// one round trip that reports what was negotiated, and keys and certificates as PEM text.

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "framework/reactor.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/tls.hpp"

namespace torsion::test {

inline void echo_setup(Record& r) {
  r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
}

// The setup most cases share: a reactor, a TLS server on 127.0.0.1 that records its
// connections, and a recording client. A case adjusts `sopt`, `copt` and the factories'
// setup, then calls listen() and connect() (or start() for both). Members are destroyed in
// the reverse order of their declaration: the connector and client first, the reactor and
// the certificates last.
struct TlsFixture {
  TestPki pki;
  Reactor reactor;
  TlsServerOptions sopt = server_options(pki);
  TlsClientOptions copt = client_options(pki);
  std::optional<TlsServerContext> sctx;
  RecordingFactory server;
  std::shared_ptr<ListeningPort> port;
  std::optional<TlsClientContext> cctx;
  RecordingClientFactory client;
  std::shared_ptr<Connector> connector;

  // Makes the server context from `sopt` and listens on 127.0.0.1, port 0.
  void listen() {
    sctx.emplace(sopt);
    port = listen_ssl(reactor, 0, server, *sctx, "127.0.0.1");
  }
  // Makes the client context from `copt` and connects `client` to the port.
  void connect() {
    cctx.emplace(copt);
    connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, *cctx);
  }
  void start() {
    listen();
    connect();
  }
  // The client's connection is lost and the server's first one has ended.
  bool both_closed() const {
    return client.lost == 1 && !server.records.empty() && server.records[0].done();
  }
  // Stops listening and checks that no connection is left.
  void stop() {
    port->stop_listening();
    CHECK(reactor.connection_count() == 0);
  }
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The key in `key_file`, as PEM encrypted with AES-256 under `passphrase`.
inline std::string encrypted_key(const std::string& key_file, const std::string& passphrase) {
  BIO* in = BIO_new_file(key_file.c_str(), "r");
  REQUIRE(in != nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  REQUIRE(key != nullptr);
  BIO* out = BIO_new(BIO_s_mem());
  REQUIRE(PEM_write_bio_PrivateKey(out, key, EVP_aes_256_cbc(),
                                   reinterpret_cast<const unsigned char*>(passphrase.data()),
                                   static_cast<int>(passphrase.size()), nullptr, nullptr) == 1);
  EVP_PKEY_free(key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(out);
  return pem;
}

// One echo of "ping" from the client; returns what both sides negotiated.
inline std::pair<std::optional<TlsInfo>, std::optional<Reason>> echo_once(TlsFixture& f) {
  std::optional<TlsInfo> info;
  f.server.setup = echo_setup;
  f.client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      info = tls_info(*rr.transport);
      rr.transport->write("ping");
    };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received == "ping") rr.transport->lose_connection();
    };
  };
  f.start();
  wait_for(f.reactor, [&] { return f.client.lost == 1 || f.client.failed == 1; }, "the echo");
  std::optional<Reason> failure = f.client.failure;
  f.port->stop_listening();
  wait_for(f.reactor, [&] { return f.reactor.connection_count() == 0; }, "every connection");
  return {info, failure};
}

}  // namespace torsion::test
