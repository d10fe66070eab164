// The contexts: loading certificates, keys, CAs, SNI entries and ALPN once, when a
// TlsServerContext or TlsClientContext is made; and the per-connection client set-up and
// TlsInfo that read them.

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio/ip/address.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/detail/check_seconds.hpp"
#include "transports/detail/tls_context.hpp"

namespace torsion {

// --- contexts --------------------------------------------------------------------

namespace {

// ALPN's wire format: each name prefixed by its length.
std::string alpn_wire(const std::vector<std::string>& names, const char* what) {
  std::string wire;
  for (const auto& n : names) {
    if (n.empty() || n.size() > 255)
      throw std::invalid_argument(std::string(what) + ": ALPN protocol name '" + n +
                                  "' must be 1..255 bytes");
    wire += static_cast<char>(n.size());
    wire += n;
  }
  return wire;
}


}  // namespace

namespace {

using detail::SniEntry;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

namespace {

// Whether `name` (lower case) is what `pattern` (lower case, maybe "*.domain") names.
bool sni_matches(const std::string& pattern, const std::string& name) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    const std::string_view suffix = std::string_view(pattern).substr(1);  // ".domain"
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      return false;
    return name.find('.') == name.size() - suffix.size();  // exactly one label before
  }
  return pattern == name;
}

// The servername callback: swaps in the certificate of the first entry the SNI matches.
int select_certificate(SSL* ssl, int* alert, void* arg) {
  const auto* impl = static_cast<const TlsServerContext::Impl*>(arg);
  const char* sent = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!sent) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  const std::string name = lower(sent);
  for (const auto& e : impl->sni) {
    if (!sni_matches(e.name, name)) continue;
    if (SSL_use_cert_and_key(ssl, e.cert.get(), e.key.get(), e.chain.get(), 1) != 1) {
      ERR_clear_error();
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    break;
  }
  return SSL_TLSEXT_ERR_OK;
}

SniEntry load_sni(const TlsSniCertificate& c) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("TlsServerContext: SNI certificate for '" + c.host_name +
                                "': " + why);
  };
  if (c.host_name.empty()) fail("host_name must not be empty");
  const auto open = [&](const std::string& path, const char* what) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
      const int err = errno;
      ERR_clear_error();
      fail(std::string(what) + " '" + path + "' cannot be read: " +
           std::generic_category().message(err));
    }
    return bio;
  };
  SniEntry e;
  e.name = lower(c.host_name);
  auto bio = open(c.certificate_chain_file, "certificate chain");
  e.cert.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!e.cert) {
    ERR_clear_error();
    fail("certificate chain '" + c.certificate_chain_file + "' holds no PEM certificate");
  }
  e.chain.reset(sk_X509_new_null());
  if (!e.chain) throw std::runtime_error("TlsServerContext: out of memory");
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (sk_X509_push(e.chain.get(), x) <= 0) {
      X509_free(x);
      throw std::runtime_error("TlsServerContext: out of memory");
    }
  }
  ERR_clear_error();  // the PEM_R_NO_START_LINE that ends the loop
  auto key_bio = open(c.private_key_file, "private key");
  e.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!e.key) {
    ERR_clear_error();
    fail("private key '" + c.private_key_file + "' holds no PEM private key");
  }
  if (X509_check_private_key(e.cert.get(), e.key.get()) != 1) {
    ERR_clear_error();
    fail("private key '" + c.private_key_file + "' does not match the certificate");
  }
  return e;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* impl = static_cast<const TlsServerContext::Impl*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen,
                            reinterpret_cast<const unsigned char*>(impl->alpn.data()),
                            static_cast<unsigned int>(impl->alpn.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Every certificate in the PEM file `path`, appended to the chain the server sends.
void add_extra_chain(asio::ssl::context& ctx, const std::string& path) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("TlsServerContext: extra chain '" + path + "': " + why);
  };
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) {
    const int err = errno;
    ERR_clear_error();
    fail("cannot be read: " + std::generic_category().message(err));
  }
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    // SSL_CTX_add0_chain_cert, without the macro's C cast; the context takes `cert`.
    if (SSL_CTX_ctrl(ctx.native_handle(), SSL_CTRL_CHAIN_CERT, 0, cert) != 1) {
      X509_free(cert);
      BIO_free(bio);
      fail("OpenSSL refused a certificate");
    }
    ++added;
  }
  BIO_free(bio);
  ERR_clear_error();  // the PEM_R_NO_START_LINE that ends the loop
  if (added == 0) fail("holds no PEM certificate");
}

// Trusts every *.pem file in `dir` (as Twisted's caCertsDir), in name order; returns them.
std::vector<std::string> load_ca_directory(asio::ssl::context& ctx, const std::string& dir,
                                           const char* who) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".pem") files.push_back(it->path().string());
  }
  if (ec)
    throw std::invalid_argument(std::string(who) + ": CA directory '" + dir + "': " + ec.message());
  if (files.empty())
    throw std::invalid_argument(std::string(who) + ": CA directory '" + dir +
                                "' holds no .pem file");
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    ctx.load_verify_file(f, ec);
    if (ec)
      throw std::invalid_argument(std::string(who) + ": CA file '" + f + "' (in CA directory '" +
                                  dir + "'): " + ec.message());
  }
  return files;
}

// Mutual TLS: trust the client CAs, name them to clients, ask for a certificate.
void configure_client_verification(asio::ssl::context& ctx, const TlsServerOptions& options) {
  const bool has_ca = !options.ca_file.empty() || !options.ca_directory.empty();
  if (options.verify_client == VerifyClient::none) {
    if (has_ca)
      throw std::invalid_argument(
          "TlsServerContext: ca_file / ca_directory given but verify_client is none (set it to "
          "optional or required to check client certificates)");
    return;
  }
  if (!has_ca)
    throw std::invalid_argument(
        "TlsServerContext: verify_client needs ca_file or ca_directory (the CAs whose client "
        "certificates are trusted)");
  std::vector<std::string> files;
  if (!options.ca_file.empty()) {
    std::error_code ec;
    ctx.load_verify_file(options.ca_file, ec);
    if (ec)
      throw std::invalid_argument("TlsServerContext: CA file '" + options.ca_file +
                                  "': " + ec.message());
    files.push_back(options.ca_file);
  }
  if (!options.ca_directory.empty()) {
    auto more = load_ca_directory(ctx, options.ca_directory, "TlsServerContext");
    files.insert(files.end(), more.begin(), more.end());
  }
  // The acceptable issuers sent in CertificateRequest, so a client holding several
  // certificates can pick the right one.
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  if (!names) throw std::runtime_error("TlsServerContext: out of memory");
  for (const auto& f : files) SSL_add_file_cert_subjects_to_stack(names, f.c_str());
  ERR_clear_error();
  SSL_CTX_set_client_CA_list(ctx.native_handle(), names);  // the context takes `names`
  int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
  if (options.verify_client == VerifyClient::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx.native_handle(), mode, nullptr);
}

// OpenSSL frees a connection's record buffers (about 34 KiB) whenever they are empty,
// instead of keeping them for its lifetime: an idle connection, or a handshake waiting
// for the peer, holds only its state.
void release_buffers_when_idle(asio::ssl::context& ctx) {
  SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
}

int openssl_version(TlsVersion v) { return v == TlsVersion::tls1_2 ? TLS1_2_VERSION : TLS1_3_VERSION; }

constexpr auto kModernOnly = asio::ssl::context::default_workarounds |
                             asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                             asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1;

// What both sides' contexts start with: no protocol older than TLS 1.2, record buffers
// released when idle, and the versions, ciphers and the key's passphrase as `o` says
// (before any key is loaded).
// Returns `ctx`.
asio::ssl::context& prepare_context(asio::ssl::context& ctx, const TlsCryptoOptions& o,
                                    const char* who) {
  ctx.set_options(kModernOnly);
  release_buffers_when_idle(ctx);
  if (o.min_version > o.max_version)
    throw std::invalid_argument(std::string(who) + ": min_version is above max_version");
  SSL_CTX* c = ctx.native_handle();
  SSL_CTX_ctrl(c, SSL_CTRL_SET_MIN_PROTO_VERSION, openssl_version(o.min_version), nullptr);
  SSL_CTX_ctrl(c, SSL_CTRL_SET_MAX_PROTO_VERSION, openssl_version(o.max_version), nullptr);
  if (!o.cipher_list.empty() && SSL_CTX_set_cipher_list(c, o.cipher_list.c_str()) != 1) {
    ERR_clear_error();
    throw std::invalid_argument(std::string(who) + ": cipher_list '" + o.cipher_list +
                                "' names no cipher OpenSSL knows");
  }
  if (!o.cipher_suites.empty() && SSL_CTX_set_ciphersuites(c, o.cipher_suites.c_str()) != 1) {
    ERR_clear_error();
    throw std::invalid_argument(std::string(who) + ": cipher_suites '" + o.cipher_suites +
                                "' names no TLS 1.3 cipher suite OpenSSL knows");
  }
  // Always a callback, so that an encrypted key without a passphrase fails instead of
  // OpenSSL asking for one on the terminal.
  ctx.set_password_callback(
      [pass = o.private_key_passphrase](std::size_t, asio::ssl::context::password_purpose) {
        return pass;
      });
  return ctx;
}

// For a key that would not load: a hint when it is encrypted (the passphrase is then the
// likely cause), else nothing.
std::string encrypted_hint(const std::string& key_file, const std::string& key_pem) {
  std::string text = key_pem;
  if (text.empty()) {
    std::ifstream in(key_file, std::ios::binary);
    text.resize(64 * 1024);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
  }
  if (text.find("ENCRYPTED") == std::string::npos) return {};
  return " (the key is encrypted: is private_key_passphrase wrong or missing?)";
}

// Loads the certificate chain and its key from a file or from PEM text (one of each), and
// checks they match. `what_key` names the key in messages.
void load_identity(asio::ssl::context& ctx, const std::string& chain_file,
                   const std::string& chain_pem, const std::string& key_file,
                   const std::string& key_pem, const char* who) {
  std::error_code ec;
  if (!chain_file.empty() && !chain_pem.empty())
    throw std::invalid_argument(std::string(who) +
                                ": give the certificate chain as a file or as PEM text, not both");
  if (!key_file.empty() && !key_pem.empty())
    throw std::invalid_argument(std::string(who) +
                                ": give the private key as a file or as PEM text, not both");
  const std::string chain_name = chain_pem.empty() ? "'" + chain_file + "'" : "(PEM text)";
  if (!chain_pem.empty())
    ctx.use_certificate_chain(asio::buffer(chain_pem), ec);
  else
    ctx.use_certificate_chain_file(chain_file, ec);
  if (ec)
    throw std::invalid_argument(std::string(who) + ": certificate chain " + chain_name + ": " +
                                ec.message());
  const std::string key_name = key_pem.empty() ? "'" + key_file + "'" : "(PEM text)";
  if (!key_pem.empty())
    ctx.use_private_key(asio::buffer(key_pem), asio::ssl::context::pem, ec);
  else
    ctx.use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
    throw std::invalid_argument(std::string(who) + ": private key " + key_name +
                                " does not match the certificate");
  if (ec)
    throw std::invalid_argument(std::string(who) + ": private key " + key_name + ": " +
                                ec.message() + encrypted_hint(key_file, key_pem));
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    throw std::invalid_argument(std::string(who) + ": private key " + key_name +
                                " does not match the certificate");
  }
}

}  // namespace

namespace {

// The session resumption a server offers: tickets, a bounded cache for session ids, the
// lifetime of both, and the session id context OpenSSL needs to resume at all with
// client verification.
void configure_sessions(SSL_CTX* c, const TlsServerOptions& options) {
  detail::check_seconds(options.session_lifetime, "TlsServerOptions::session_lifetime");
  if (options.session_lifetime > 0)
    SSL_CTX_set_timeout(c, static_cast<long>(std::ceil(options.session_lifetime)));
  if (!options.session_tickets) SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  if (options.session_cache_size == 0) {
    SSL_CTX_ctrl(c, SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_OFF, nullptr);
    // TLS 1.3 without tickets resumes from the cache only: nothing to resume.
    if (!options.session_tickets) SSL_CTX_set_num_tickets(c, 0);
  } else {
    SSL_CTX_ctrl(c, SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_SERVER, nullptr);
    SSL_CTX_ctrl(c, SSL_CTRL_SET_SESS_CACHE_SIZE,
                 static_cast<long>(std::min<std::size_t>(options.session_cache_size, 1u << 30)),
                 nullptr);
  }
  static constexpr unsigned char kSessionContext[] = "torsion";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
}

// Gives `to` the ticket keys of `from`, so that tickets issued before a reload still open.
void share_ticket_keys(SSL_CTX* from, SSL_CTX* to) {
  unsigned char keys[80];  // OpenSSL's name, HMAC and AES keys
  if (SSL_CTX_ctrl(from, SSL_CTRL_GET_TLSEXT_TICKET_KEYS, sizeof keys, keys) == 1)
    SSL_CTX_ctrl(to, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, sizeof keys, keys);
  OPENSSL_cleanse(keys, sizeof keys);
  ERR_clear_error();
}

}  // namespace

TlsServerContext::TlsServerContext(const TlsServerOptions& options) {
  reload(options);
}

std::shared_ptr<const TlsServerContext::Impl> TlsServerContext::impl() const {
  const std::lock_guard lock(mutex_);
  return impl_;
}

void TlsServerContext::reload(const TlsServerOptions& options) {
  auto impl = std::make_shared<Impl>();
  detail::check_seconds(options.handshake_timeout, "TlsServerOptions::handshake_timeout");
  detail::check_seconds(options.close_timeout, "TlsServerOptions::close_timeout");
  auto& ctx = prepare_context(impl->ctx, options, "TlsServerContext");
  load_identity(ctx, options.certificate_chain_file, options.certificate_chain_pem,
                options.private_key_file, options.private_key_pem, "TlsServerContext");
  if (!options.extra_chain_file.empty()) add_extra_chain(ctx, options.extra_chain_file);
  if (options.backlog < 1 || options.backlog > 65535)
    throw std::invalid_argument("TlsServerContext: backlog must be in 1..65535, got " +
                                std::to_string(options.backlog));
  impl->backlog = options.backlog;
  impl->alpn = alpn_wire(options.alpn, "TlsServerContext");
  if (!impl->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx.native_handle(), select_alpn, impl.get());
  configure_client_verification(ctx, options);
  for (const auto& c : options.sni_certificates) {
    SniEntry e = load_sni(c);
    for (const auto& other : impl->sni)
      if (other.name == e.name)
        throw std::invalid_argument("TlsServerContext: SNI host_name '" + c.host_name +
                                    "' is listed twice");
    impl->sni.push_back(std::move(e));
  }
  if (!impl->sni.empty()) {
    // SSL_CTX_set_tlsext_servername_callback / _arg, without the macros' C casts.
    SSL_CTX_callback_ctrl(ctx.native_handle(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(select_certificate));
    SSL_CTX_ctrl(ctx.native_handle(), SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, impl.get());
  }
  impl->handshake_timeout = options.handshake_timeout;
  impl->close_timeout = options.close_timeout;
  impl->handshake_failed = options.handshake_failed;
  configure_sessions(ctx.native_handle(), options);
  const std::lock_guard lock(mutex_);
  if (impl_) share_ticket_keys(const_cast<asio::ssl::context&>(impl_->ctx).native_handle(),
                               ctx.native_handle());
  impl_ = std::move(impl);
}

TlsServerContext::~TlsServerContext() = default;

namespace {

// The SSL's ex_data slot that holds its ClientSession: where a session it makes is kept.
struct ClientSession {
  detail::ClientSessions* sessions;
  std::string key;
};

void free_client_session(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ClientSession*>(ptr);
}

int client_session_index() {
  static const int index =
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_client_session);
  return index;
}

// OpenSSL's new-session callback: keeps a copy of the session (0: OpenSSL keeps its
// reference). A copy, because the session is the live connection's own, and OpenSSL marks
// a connection's session not resumable when that connection ends without its close_notify.
int keep_session(SSL* ssl, SSL_SESSION* session) {
  auto* where = static_cast<ClientSession*>(SSL_get_ex_data(ssl, client_session_index()));
  if (!where || !SSL_SESSION_is_resumable(session)) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) where->sessions->put(where->key, copy);
  return 0;
}

}  // namespace

namespace detail {

SSL_SESSION* ClientSessions::get1(const std::string& key) {
  const std::lock_guard lock(mutex_);
  const auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  // A copy for each connection (as in keep_session): the one kept here is never a live
  // connection's, which another thread's connection could change.
  return SSL_SESSION_dup(it->second.get());
}

void ClientSessions::put(const std::string& key, SSL_SESSION* session) {
  std::unique_ptr<SSL_SESSION, SessionFree> owned(session);
  const std::lock_guard lock(mutex_);
  auto [it, added] = sessions_.try_emplace(key);
  it->second = std::move(owned);
  if (!added) return;
  order_.push_back(key);
  if (order_.size() > kMax) {
    sessions_.erase(order_.front());
    order_.pop_front();
  }
}

}  // namespace detail

TlsClientContext::TlsClientContext(const TlsClientOptions& options)
    : impl_(std::make_unique<Impl>()) {
  detail::check_seconds(options.timeout, "TlsClientOptions::timeout");
  detail::check_seconds(options.close_timeout, "TlsClientOptions::close_timeout");
  auto& ctx = prepare_context(impl_->ctx, options, "TlsClientContext");
  std::error_code ec;
  if (!options.ca_file.empty())
    ctx.load_verify_file(options.ca_file, ec);
  else if (options.ca_directory.empty() && options.ca_pem.empty())
    ctx.set_default_verify_paths(ec);
  if (ec)
    throw std::invalid_argument("TlsClientContext: CA file '" + options.ca_file +
                                "': " + ec.message());
  if (!options.ca_directory.empty()) load_ca_directory(ctx, options.ca_directory, "TlsClientContext");
  if (!options.ca_pem.empty()) {
    ctx.add_certificate_authority(asio::buffer(options.ca_pem), ec);
    if (ec)
      throw std::invalid_argument("TlsClientContext: ca_pem holds no usable PEM certificate: " +
                                  ec.message());
  }
  if (!options.certificate_file.empty() || !options.certificate_pem.empty()) {
    // Without a key of its own, the key is read from the certificate's file or text.
    const bool key_given = !options.private_key_file.empty() || !options.private_key_pem.empty();
    load_identity(ctx, options.certificate_file, options.certificate_pem,
                  key_given ? options.private_key_file : options.certificate_file,
                  key_given ? options.private_key_pem : options.certificate_pem,
                  "TlsClientContext");
  } else if (!options.private_key_file.empty() || !options.private_key_pem.empty()) {
    throw std::invalid_argument("TlsClientContext: private key '" + options.private_key_file +
                                "' given without a certificate_file");
  }
  ctx.set_verify_mode(options.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  if (options.reuse_sessions) {
    // Sessions are handed to keep_session (TLS 1.3 tickets come after the handshake) and
    // kept in impl_->sessions, not in OpenSSL's cache.
    SSL_CTX* c = ctx.native_handle();
    SSL_CTX_ctrl(c, SSL_CTRL_SET_SESS_CACHE_MODE,
                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE, nullptr);
    SSL_CTX_sess_set_new_cb(c, keep_session);
  }
  impl_->options = options;
  impl_->alpn = alpn_wire(options.alpn, "TlsClientContext");
}

TlsClientContext::~TlsClientContext() = default;

namespace detail {

TlsInfo info_of(SSL* s) {
  TlsInfo i;
  i.version = SSL_get_version(s);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) i.cipher = SSL_CIPHER_get_name(c);
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(s, &proto, &len);
  if (proto) i.alpn.assign(reinterpret_cast<const char*>(proto), len);
  if (const char* name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name)) i.server_name = name;
  i.resumed = SSL_session_reused(s) == 1;
  if (X509* cert = SSL_get1_peer_certificate(s)) {
    i.peer_certificate = true;
    i.peer_verified = SSL_get_verify_result(s) == X509_V_OK;
    X509_NAME* subject = X509_get_subject_name(cert);
    char buf[512];
    X509_NAME_oneline(subject, buf, sizeof buf);
    i.peer_subject = buf;
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    int last = at;
    for (int next = at; next >= 0; next = X509_NAME_get_index_by_NID(subject, NID_commonName, next))
      last = next;
    if (last >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));
      unsigned char* utf8 = nullptr;
      const int n = ASN1_STRING_to_UTF8(&utf8, cn);
      if (n >= 0)
        i.peer_common_name.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
      OPENSSL_free(utf8);
    }
    X509_free(cert);
  }
  return i;
}

void configure_client(SSL* ssl, TlsClientContext::Impl& impl, const std::string& name,
                      const Address& peer) {
  std::error_code ec;
  asio::ip::make_address(name, ec);
  const bool numeric = !ec;
  if (!numeric)  // SSL_set_tlsext_host_name, without the macro's C cast
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
  if (impl.options.verify_peer) {
    if (numeric)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    else
      SSL_set1_host(ssl, name.c_str());
  }
  if (!impl.alpn.empty())
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(impl.alpn.data()),
                        static_cast<unsigned int>(impl.alpn.size()));
  if (impl.options.reuse_sessions) {
    auto where = std::make_unique<ClientSession>(
        ClientSession{&impl.sessions, name + " " + peer.to_string()});
    if (SSL_SESSION* session = impl.sessions.get1(where->key)) {
      SSL_set_session(ssl, session);  // the SSL takes its own reference
      SSL_SESSION_free(session);
    }
    if (SSL_set_ex_data(ssl, client_session_index(), where.get()) == 1) where.release();
    ERR_clear_error();
  }
}


}  // namespace detail

}  // namespace torsion
