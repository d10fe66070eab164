#pragma once
// Private: what a loaded TlsServerContext or TlsClientContext holds (made by
// transports/tls_context.cpp), and the per-connection set-up both sides share: the client's
// SNI, name check and ALPN, and reading back what was negotiated. Used by the TLS layer
// (tls_layer.hpp) and the glue (tls.cpp); needs OpenSSL.

#include <openssl/ssl.h>

#include <asio/ssl/context.hpp>
#include <functional>
#include <memory>
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

struct TlsServerContext::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_server};
  std::vector<detail::SniEntry> sni;
  std::string alpn;
  double handshake_timeout = 30;
  double close_timeout = 5;
  int backlog = 511;
  std::function<void(const Address&, const Reason&)> handshake_failed;
};

struct TlsClientContext::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  TlsClientOptions options;
  std::string alpn;
};

namespace detail {

// Client-side SNI, name or IP verification and ALPN for the connection `ssl` to `name`.
void configure_client(SSL* ssl, const TlsClientContext::Impl& impl, const std::string& name);

// What was negotiated on `ssl` (after its handshake).
TlsInfo info_of(SSL* ssl);

}  // namespace detail

}  // namespace torsion
