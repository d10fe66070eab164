#pragma once
// Private: what a loaded TlsServerContext or TlsClientContext holds (made by
// transports/tls_context.cpp), and the per-connection set-up both sides share: the client's
// SNI, name check and ALPN, and reading back what was negotiated. Used by the TLS layer
// (tls_layer.hpp) and the glue (tls.cpp); needs OpenSSL.

#include <openssl/ssl.h>

#include <asio/ssl/context.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transports/tls.hpp"

namespace torsion {

namespace detail {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ChainFree {
  void operator()(STACK_OF(X509) * c) const { sk_X509_pop_free(c, X509_free); }
};

// One TlsSniCertificate, loaded.
struct SniEntry {
  std::string name;  // lower case
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, KeyFree> key;
  std::unique_ptr<STACK_OF(X509), ChainFree> chain;
};

}  // namespace detail

// One loaded configuration. A TlsServerContext holds the one in force (reload() swaps in
// another); every connection keeps the one it started with alive, since OpenSSL's
// callbacks (SNI, ALPN) point into it.
struct TlsServerContext::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_server};
  std::vector<detail::SniEntry> sni;
  std::string alpn;
  double handshake_timeout = 30;
  double close_timeout = 5;
  int backlog = 511;
  std::function<void(const Address&, const Reason&)> handshake_failed;
};

namespace detail {

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};

// A client's sessions, one per server (name and address), the oldest forgotten first
// beyond kMax. OpenSSL hands it each new session (a TLS 1.3 ticket arrives after the
// handshake); connections of any thread may share it.
class ClientSessions {
 public:
  static constexpr std::size_t kMax = 256;
  // A copy of the session to offer `key`, or null (the caller owns it).
  SSL_SESSION* get1(const std::string& key);
  // Remembers `session` (this takes the caller's reference) for `key`.
  void put(const std::string& key, SSL_SESSION* session);

 private:
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<SSL_SESSION, SessionFree>> sessions_;
  std::deque<std::string> order_;  // keys, oldest first
};

}  // namespace detail

struct TlsClientContext::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  TlsClientOptions options;
  std::string alpn;
  detail::ClientSessions sessions;  // used when options.reuse_sessions
};

namespace detail {

// Client-side SNI, name or IP verification and ALPN for the connection `ssl` to `name`
// at `peer`; with reuse_sessions, the session last made with that server is offered and
// the new one kept.
void configure_client(SSL* ssl, TlsClientContext::Impl& impl, const std::string& name,
                      const Address& peer);

// What was negotiated on `ssl` (after its handshake).
TlsInfo info_of(SSL* ssl);

}  // namespace detail

}  // namespace torsion
