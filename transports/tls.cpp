#include "transports/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <algorithm>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/detail/tracked.hpp"
#include "framework/log.hpp"
#include "transports/detail/stream_connector.hpp"
#include "transports/detail/stream_port.hpp"

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

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

void check_timeout(double t, const char* what) {
  if (std::isnan(t) || t < 0)
    throw std::invalid_argument(std::string(what) + " must be >= 0 seconds, got " +
                                std::to_string(t));
}

}  // namespace

namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct ChainFree {
  void operator()(STACK_OF(X509)* c) const { sk_X509_pop_free(c, X509_free); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

// One TlsSniCertificate, loaded.
struct SniEntry {
  std::string name;  // lower case
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, KeyFree> key;
  std::unique_ptr<STACK_OF(X509), ChainFree> chain;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

struct TlsServerContext::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_server};
  std::vector<SniEntry> sni;
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
  // Session resumption with verification needs a context id (else OpenSSL refuses it).
  static constexpr unsigned char kSessionContext[] = "torsion";
  SSL_CTX_set_session_id_context(ctx.native_handle(), kSessionContext,
                                 sizeof kSessionContext - 1);
}

constexpr auto kModernOnly = asio::ssl::context::default_workarounds |
                             asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                             asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1;

}  // namespace

TlsServerContext::TlsServerContext(const TlsServerOptions& options)
    : impl_(std::make_unique<Impl>()) {
  check_timeout(options.handshake_timeout, "TlsServerOptions::handshake_timeout");
  check_timeout(options.close_timeout, "TlsServerOptions::close_timeout");
  auto& ctx = impl_->ctx;
  ctx.set_options(kModernOnly);
  std::error_code ec;
  ctx.use_certificate_chain_file(options.certificate_chain_file, ec);
  if (ec)
    throw std::invalid_argument("TlsServerContext: certificate chain '" +
                                options.certificate_chain_file + "': " + ec.message());
  ctx.use_private_key_file(options.private_key_file, asio::ssl::context::pem, ec);
  if (ec)
    throw std::invalid_argument("TlsServerContext: private key '" + options.private_key_file +
                                "': " + ec.message());
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
    throw std::invalid_argument("TlsServerContext: private key '" + options.private_key_file +
                                "' does not match the certificate");
  if (!options.extra_chain_file.empty()) add_extra_chain(ctx, options.extra_chain_file);
  if (options.backlog < 1 || options.backlog > 65535)
    throw std::invalid_argument("TlsServerContext: backlog must be in 1..65535, got " +
                                std::to_string(options.backlog));
  impl_->backlog = options.backlog;
  impl_->alpn = alpn_wire(options.alpn, "TlsServerContext");
  if (!impl_->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx.native_handle(), select_alpn, impl_.get());
  configure_client_verification(ctx, options);
  for (const auto& c : options.sni_certificates) {
    SniEntry e = load_sni(c);
    for (const auto& other : impl_->sni)
      if (other.name == e.name)
        throw std::invalid_argument("TlsServerContext: SNI host_name '" + c.host_name +
                                    "' is listed twice");
    impl_->sni.push_back(std::move(e));
  }
  if (!impl_->sni.empty()) {
    // SSL_CTX_set_tlsext_servername_callback / _arg, without the macros' C casts.
    SSL_CTX_callback_ctrl(ctx.native_handle(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(select_certificate));
    SSL_CTX_ctrl(ctx.native_handle(), SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, impl_.get());
  }
  impl_->handshake_timeout = options.handshake_timeout;
  impl_->close_timeout = options.close_timeout;
  impl_->handshake_failed = options.handshake_failed;
}

TlsServerContext::~TlsServerContext() = default;

TlsClientContext::TlsClientContext(const TlsClientOptions& options)
    : impl_(std::make_unique<Impl>()) {
  check_timeout(options.timeout, "TlsClientOptions::timeout");
  check_timeout(options.close_timeout, "TlsClientOptions::close_timeout");
  auto& ctx = impl_->ctx;
  ctx.set_options(kModernOnly);
  std::error_code ec;
  if (!options.ca_file.empty())
    ctx.load_verify_file(options.ca_file, ec);
  else if (options.ca_directory.empty())
    ctx.set_default_verify_paths(ec);
  if (ec)
    throw std::invalid_argument("TlsClientContext: CA file '" + options.ca_file +
                                "': " + ec.message());
  if (!options.ca_directory.empty()) load_ca_directory(ctx, options.ca_directory, "TlsClientContext");
  if (!options.certificate_file.empty()) {
    const std::string& key =
        options.private_key_file.empty() ? options.certificate_file : options.private_key_file;
    ctx.use_certificate_chain_file(options.certificate_file, ec);
    if (ec)
      throw std::invalid_argument("TlsClientContext: certificate '" + options.certificate_file +
                                  "': " + ec.message());
    ctx.use_private_key_file(key, asio::ssl::context::pem, ec);
    if (ec)
      throw std::invalid_argument("TlsClientContext: private key '" + key + "': " + ec.message());
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
      throw std::invalid_argument("TlsClientContext: private key '" + key +
                                  "' does not match the certificate");
  } else if (!options.private_key_file.empty()) {
    throw std::invalid_argument("TlsClientContext: private key '" + options.private_key_file +
                                "' given without a certificate_file");
  }
  ctx.set_verify_mode(options.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  impl_->options = options;
  impl_->alpn = alpn_wire(options.alpn, "TlsClientContext");
}

TlsClientContext::~TlsClientContext() = default;

// --- the transport ---------------------------------------------------------------

namespace {

using tcp = asio::ip::tcp;
using SslStream = asio::ssl::stream<tcp::socket>;

using detail::log_exception;
using detail::to_address;

// Says why a handshake failed, in words: OpenSSL's reason plus the verification result.
Reason handshake_failure(SSL* ssl, const std::error_code& ec, bool timed_out) {
  if (timed_out) return Reason(error::timed_out, {}, "TLS handshake");
  std::string detail = "TLS handshake";
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) detail = X509_verify_cert_error_string(verify);
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
    detail = "the peer closed the connection during the handshake";
  return Reason(error::tls_failed, ec, detail);
}

TlsInfo info_of(SSL* s) {
  TlsInfo i;
  i.version = SSL_get_version(s);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) i.cipher = SSL_CIPHER_get_name(c);
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(s, &proto, &len);
  if (proto) i.alpn.assign(reinterpret_cast<const char*>(proto), len);
  if (const char* name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name)) i.server_name = name;
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

// Client-side SNI, name or IP verification and ALPN, as the options say.
void configure_client(SSL* ssl, const TlsClientContext::Impl& impl, const std::string& name) {
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
}

class TlsTransport final : public Transport,
                           public detail::Tracked,
                           public std::enable_shared_from_this<TlsTransport> {
 public:
  using LostHook = std::function<void(const Reason&)>;
  using HandshakeDone = std::function<void(const Reason* failure)>;

  TlsTransport(Reactor& reactor, tcp::socket socket, asio::ssl::context& ctx, double close_timeout)
      : connections_(reactor.connections()), stream_(std::move(socket), ctx),
        timer_(reactor.context()), close_timeout_(close_timeout) {
    std::error_code ec;
    stream_.lowest_layer().set_option(tcp::no_delay(true), ec);
    const auto local = stream_.lowest_layer().local_endpoint(ec);
    if (!ec) host_ = to_address(local);
    const auto remote = stream_.lowest_layer().remote_endpoint(ec);
    if (!ec) peer_ = to_address(remote);
  }

  ~TlsTransport() override { connections_.unlink(*this); }

  SSL* ssl() { return stream_.native_handle(); }
  SSL* ssl() const { return const_cast<SslStream&>(stream_).native_handle(); }

  // Runs the handshake with a deadline; `done` gets null on success.
  void handshake(asio::ssl::stream_base::handshake_type type, double timeout, HandshakeDone on_done) {
    connections_.link(*this);
    handshake_done_ = std::move(on_done);
    if (timeout > 0) {
      timer_.expires_after(seconds(timeout));
      timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
        if (ec || self->handshake_finished_) return;
        self->handshake_timed_out_ = true;
        std::error_code ignored;
        self->stream_.lowest_layer().close(ignored);
      });
    }
    stream_.async_handshake(type, [self = shared_from_this()](const std::error_code& ec) {
      self->handshake_finished_ = true;
      self->timer_.cancel();
      auto done = std::move(self->handshake_done_);
      if (self->released_) return;
      if (ec) {
        const Reason failure = handshake_failure(self->ssl(), ec, self->handshake_timed_out_);
        std::error_code ignored;
        self->stream_.lowest_layer().close(ignored);
        self->state_ = State::closed;
        self->connections_.unlink(*self);
        done(&failure);
        return;
      }
      done(nullptr);
    });
  }

  // Attaches the protocol after a successful handshake; from the loop only.
  void start(std::unique_ptr<Protocol> protocol, LostHook on_lost = {}) {
    protocol_ = std::move(protocol);
    on_lost_ = std::move(on_lost);
    self_ = shared_from_this();
    guarded("connection_made", [&] { protocol_->make_connection(*this); });
    // (A lose_write_connection in connection_made may be sending close_notify: reading
    // then starts once it is out.)
    if (state_ == State::open && !read_paused_ && !sending_close_notify_) start_read();
  }

  TlsInfo info() const { return info_of(ssl()); }

  // Transport
  void lose_connection() override {
    if (state_ != State::open) return;
    state_ = State::closing;
    if (!writing_ && out_.empty()) begin_shutdown();
  }
  void abort_connection() override { close_hard(Reason(error::connection_aborted)); }
  // TLS 1.3 half-close: close_notify once the queue drains, reading goes on until the
  // peer's close_notify (see shut_write).
  void lose_write_connection() override {
    if (state_ != State::open || write_shut_requested_) return;
    write_shut_requested_ = true;
    if (!writing_ && out_.empty()) shut_write();
  }
  Address get_peer() const override { return peer_; }
  Address get_host() const override { return host_; }
  std::size_t buffer_size() const override { return out_.size() + inflight_.size(); }
  bool connected() const override { return state_ == State::open; }
  int native_handle() const override {
    auto& sock = const_cast<SslStream&>(stream_).lowest_layer();
    return sock.is_open() ? sock.native_handle() : -1;
  }

  void register_producer(Producer& producer, bool streaming) override {
    if (producer_) throw std::logic_error("register_producer: a producer is already registered");
    if (state_ == State::closed) {
      producer.stop_producing();
      return;
    }
    producer_ = &producer;
    streaming_ = streaming;
    producer_paused_ = false;
    if (streaming_)
      check_high_water();
    else
      schedule_pull();
  }
  void unregister_producer() override { producer_ = nullptr; }
  void set_write_buffer_limits(std::size_t high, std::size_t low) override {
    if (low > high)
      throw std::invalid_argument("set_write_buffer_limits: low (" + std::to_string(low) +
                                  ") must not exceed high (" + std::to_string(high) + ")");
    limits_ = {high, low};
    check_high_water();
    check_low_water();
  }
  WriteBufferLimits write_buffer_limits() const override { return limits_; }

  void pause_producing() override { read_paused_ = true; }
  void resume_producing() override {
    if (!read_paused_) return;
    read_paused_ = false;
    if (state_ != State::open || delivering_) return;
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->resume_reading(); });
  }
  void stop_producing() override { lose_connection(); }

  void lose_tracked() override { lose_connection(); }
  void abort_tracked() override { abort_connection(); }
  void release_tracked() override {
    released_ = true;
    state_ = State::closed;
    finished_ = true;
    std::error_code ec;
    stream_.lowest_layer().close(ec);
    timer_.cancel();
    connections_.unlink(*this);
    auto keep = std::move(self_);
  }

 protected:
  void write_bytes(std::string_view data) override {
    if (state_ != State::open || write_shut_requested_ || data.empty()) return;
    out_.append(data);
    schedule_flush();
    check_high_water();
  }

 private:
  enum class State : std::uint8_t { open, closing, closed };
  static constexpr std::size_t kReadSize = 16 * 1024;  // one TLS record's plaintext

  template <class F>
  void guarded(const char* what, F&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("exception in ") + what + " (peer " + peer_.to_string() +
                               "): " + e.what() + "; aborting the connection");
      close_hard(Reason(error::callback_threw, {}, std::string(what) + ": " + e.what(),
                        std::current_exception()));
    } catch (...) {
      log(LogLevel::error, std::string("non-standard exception in ") + what);
      close_hard(Reason(error::callback_threw, {}, what, std::current_exception()));
    }
  }

  // --- reading ---

  void start_read() {
    if (!rbuf_) rbuf_ = std::make_unique<char[]>(kReadSize);
    reading_ = true;
    stream_.async_read_some(asio::buffer(rbuf_.get(), kReadSize),
                            [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(const std::error_code& ec, std::size_t n) {
    reading_ = false;
    if (state_ == State::closing && shutdown_waiting_for_read_) {
      shutdown_waiting_for_read_ = false;
      start_shutdown();
      return;
    }
    if (state_ != State::open) return;
    if (shut_write_waiting_for_read_) {
      // The read was cancelled so that close_notify can go out; it may have completed with
      // data (or the peer's end) first, which is handled below once the send is started.
      shut_write_waiting_for_read_ = false;
      send_close_notify();
      if (ec == asio::error::operation_aborted) return;  // reading resumes after the send
      if (!ec) {
        stashed_ = n;  // delivered once close_notify is out (resume_reading)
        return;
      }
    }
    if (ec) {
      if (ec == asio::error::eof) {  // the peer's close_notify
        eof_pending_ = true;
        if (!read_paused_) handle_eof();
      } else if (ec == asio::ssl::error::stream_truncated) {
        close_hard(Reason(error::connection_lost, {}, "the peer closed without TLS close_notify"));
      } else if (ec != asio::error::operation_aborted) {
        if (std::string_view(ec.category().name()) == "asio.ssl")
          close_hard(Reason(error::tls_failed, ec));
        else
          close_hard(Reason::from_os_error(ec));
      }
      return;
    }
    if (read_paused_) {
      stashed_ = n;
      return;
    }
    deliver(n);
  }

  void deliver(std::size_t n) {
    delivering_ = true;
    guarded("data_received", [&] { protocol_->data_received(std::string_view(rbuf_.get(), n)); });
    delivering_ = false;
    if (state_ == State::open && !read_paused_ && !reading_ && !sending_close_notify_)
      start_read();
  }

  void resume_reading() {
    if (state_ != State::open || read_paused_ || delivering_ || sending_close_notify_) return;
    if (stashed_ > 0) {
      deliver(std::exchange(stashed_, 0));
    } else if (eof_pending_) {
      handle_eof();
    } else if (!reading_ && !read_closed_) {
      start_read();
    }
  }

  // The peer's close_notify. The protocol hears it in every case; its answer matters only
  // while our write side is open. Once ours is shut too, both directions are done.
  void handle_eof() {
    eof_pending_ = false;
    read_closed_ = true;
    bool keep_open = false;
    guarded("eof_received", [&] { keep_open = protocol_->eof_received(); });
    if (state_ == State::open && (!keep_open || write_shut_requested_)) lose_connection();
  }

  // --- writing: everything written during one callback goes out in one SSL_write ---

  void schedule_flush() {
    if (flush_posted_ || writing_) return;
    flush_posted_ = true;
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
    });
  }

  void flush() {
    if (writing_ || out_.empty() || state_ == State::closed) return;
    inflight_.swap(out_);
    out_.clear();
    writing_ = true;
    asio::async_write(stream_, asio::buffer(inflight_),
                      [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                        self->on_written(ec);
                      });
  }

  void on_written(const std::error_code& ec) {
    writing_ = false;
    inflight_.clear();
    if (state_ == State::closed) return;
    if (ec) {
      close_hard(Reason::from_os_error(ec));
      return;
    }
    if (!out_.empty()) {
      flush();
    } else if (state_ == State::closing) {
      begin_shutdown();
      return;
    } else if (write_shut_requested_) {
      shut_write();
      return;
    }
    check_low_water();
  }

  // --- half-close: close_notify now, reading until the peer's ---
  //
  // Asio's ssl::stream sends close_notify only from async_shutdown, which then reads
  // (discarding application data) until the peer's close_notify. Marking the peer's as
  // already received for the length of that call makes it stop once ours is written;
  // the mark is taken back before reading resumes, so SSL_read delivers the peer's
  // remaining data and then its close_notify (OpenSSL allows reading after sending ours).
  // No read may be in flight meanwhile, since it would see the false mark: a pending one
  // is cancelled first, and reading is held until the send completes.

  void shut_write() {
    if (shut_write_begun_) return;
    shut_write_begun_ = true;
    if (reading_) {
      shut_write_waiting_for_read_ = true;
      std::error_code ec;
      stream_.lowest_layer().cancel(ec);
      return;
    }
    send_close_notify();
  }

  void send_close_notify() {
    SSL* s = ssl();
    const bool peer_done = (SSL_get_shutdown(s) & SSL_RECEIVED_SHUTDOWN) != 0;
    if (!peer_done) SSL_set_shutdown(s, SSL_get_shutdown(s) | SSL_RECEIVED_SHUTDOWN);
    sending_close_notify_ = true;
    writing_ = true;  // lose_connection waits for it, as for a data write
    stream_.async_shutdown([self = shared_from_this(), peer_done](const std::error_code& ec) {
      self->sending_close_notify_ = false;
      self->writing_ = false;
      if (self->state_ == State::closed) return;
      SSL* s2 = self->ssl();
      if (!peer_done) SSL_set_shutdown(s2, SSL_get_shutdown(s2) & ~SSL_RECEIVED_SHUTDOWN);
      if (ec) {
        self->close_hard(Reason::from_os_error(ec, "sending TLS close_notify"));
        return;
      }
      if (self->state_ == State::closing) {  // lose_connection came meanwhile
        self->begin_shutdown();
        return;
      }
      if (self->read_closed_) {  // the peer had finished first: both directions are done
        self->lose_connection();
        return;
      }
      self->resume_reading();
    });
  }

  // --- flow control ---

  void check_high_water() {
    if (producer_ && streaming_ && !producer_paused_ && buffer_size() > limits_.high) {
      producer_paused_ = true;
      guarded("pause_producing", [&] { producer_->pause_producing(); });
    }
  }
  void check_low_water() {
    if (!producer_ || state_ != State::open || write_shut_requested_) return;
    if (streaming_) {
      if (producer_paused_ && buffer_size() <= limits_.low) {
        producer_paused_ = false;
        guarded("resume_producing", [&] { producer_->resume_producing(); });
      }
    } else if (buffer_size() == 0) {
      schedule_pull();
    }
  }
  void schedule_pull() {
    if (pull_posted_) return;
    pull_posted_ = true;
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->pull_posted_ = false;
      if (!self->producer_ || self->streaming_ || self->state_ != State::open ||
          self->write_shut_requested_ || self->buffer_size() != 0)
        return;
      self->guarded("resume_producing", [&] { self->producer_->resume_producing(); });
    });
  }

  // --- closing: close_notify, then wait (bounded) for the peer's ---

  void begin_shutdown() {
    if (shutdown_begun_) return;
    shutdown_begun_ = true;
    if (reading_) {  // the read must finish before the engine can shut down
      shutdown_waiting_for_read_ = true;
      std::error_code ec;
      stream_.lowest_layer().cancel(ec);
      return;
    }
    start_shutdown();
  }

  void start_shutdown() {
    if (close_timeout_ > 0) {
      timer_.expires_after(seconds(close_timeout_));
      timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
        if (ec || self->state_ == State::closed) return;
        std::error_code ignored;  // a silent peer: stop waiting for its close_notify
        self->stream_.lowest_layer().close(ignored);
      });
    }
    stream_.async_shutdown([self = shared_from_this()](const std::error_code&) {
      self->timer_.cancel();
      if (self->state_ == State::closed) return;
      self->state_ = State::closed;
      std::error_code ignored;
      self->stream_.lowest_layer().close(ignored);
      self->post_finish(Reason());
    });
  }

  void close_hard(Reason reason) {
    if (state_ == State::closed) return;
    state_ = State::closed;
    out_.clear();
    timer_.cancel();
    std::error_code ec;
    auto& sock = stream_.lowest_layer();
    if (reason.is(error::connection_aborted) || reason.is(error::callback_threw))
      sock.set_option(asio::socket_base::linger(true, 0), ec);
    sock.close(ec);
    post_finish(std::move(reason));
  }

  void post_finish(Reason reason) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), reason = std::move(reason)] {
      self->finish(reason);
    });
  }

  void finish(const Reason& reason) {
    if (finished_) return;
    finished_ = true;
    if (Producer* p = producer_) {
      producer_ = nullptr;
      try {
        p->stop_producing();
      } catch (...) {
        log_exception("stop_producing");
      }
    }
    try {
      if (protocol_) protocol_->end_connection(reason);
    } catch (...) {
      log_exception("connection_lost");
    }
    if (on_lost_) {
      try {
        on_lost_(reason);
      } catch (...) {
        log_exception("client_connection_lost");
      }
    }
    connections_.unlink(*this);
    protocol_.reset();
    on_lost_ = nullptr;
    self_.reset();
  }

  detail::TrackedList& connections_;
  SslStream stream_;
  asio::steady_timer timer_;  // handshake deadline, then close_notify deadline
  double close_timeout_;
  Address host_;
  Address peer_;
  std::unique_ptr<Protocol> protocol_;
  LostHook on_lost_;
  HandshakeDone handshake_done_;
  std::shared_ptr<TlsTransport> self_;
  std::unique_ptr<char[]> rbuf_;
  std::size_t stashed_ = 0;
  std::string out_;       // written, not yet handed to OpenSSL
  std::string inflight_;  // being written
  WriteBufferLimits limits_;
  Producer* producer_ = nullptr;
  State state_ = State::open;
  bool reading_ = false;
  bool writing_ = false;
  bool delivering_ = false;
  bool read_paused_ = false;
  bool eof_pending_ = false;
  bool flush_posted_ = false;
  bool pull_posted_ = false;
  bool streaming_ = false;
  bool producer_paused_ = false;
  bool shutdown_begun_ = false;
  bool shutdown_waiting_for_read_ = false;
  bool write_shut_requested_ = false;  // lose_write_connection was called
  bool shut_write_begun_ = false;
  bool shut_write_waiting_for_read_ = false;
  bool sending_close_notify_ = false;
  bool read_closed_ = false;  // the peer's close_notify was handed to the protocol
  bool handshake_finished_ = false;
  bool handshake_timed_out_ = false;
  bool released_ = false;
  bool finished_ = false;
};

// --- server and client: the shared accept loop and connector, with a handshake before
// the protocol is built ---------------------------------------------------------------

class TlsPort final : public detail::StreamPort<tcp> {
 public:
  TlsPort(Reactor& reactor, Factory& factory, const TlsServerContext& context)
      : StreamPort(reactor, factory), context_(context) {}

  void open(const tcp::endpoint& ep, std::error_code& ec) {
    Address host = detail::open_tcp_acceptor(acceptor(), ep, context_.impl().backlog, false, ec);
    if (!ec) start(std::move(host));
  }

  // For the shared_ptr overload: the port and each handshake it starts keep this alive.
  void keep_alive(std::shared_ptr<const void> owner) { owner_ = std::move(owner); }

 private:
  void accepted(tcp::socket socket, const Address&) override {
    auto& impl = context_.impl();
    auto transport = std::make_shared<TlsTransport>(reactor_, std::move(socket), impl.ctx,
                                                    impl.close_timeout);
    std::weak_ptr<TlsTransport> weak = transport;
    transport->handshake(
        asio::ssl::stream_base::server, impl.handshake_timeout,
        [weak, &factory = factory_, &impl, owner = owner_](const Reason* failure) {
          auto t = weak.lock();
          if (!t) return;
          if (failure) {
            log(LogLevel::info, "TLS handshake with " + t->get_peer().to_string() +
                                    " failed: " + failure->message());
            if (const auto& hook = impl.handshake_failed) {
              try {
                hook(t->get_peer(), *failure);
              } catch (...) {
                log_exception("TlsServerOptions::handshake_failed");
              }
            }
            return;
          }
          if (auto protocol = detail::build_server_protocol(factory, t->get_peer()))
            t->start(std::move(protocol));
          else
            t->abort_connection();
        });
  }

  const TlsServerContext& context_;
  std::shared_ptr<const void> owner_;
};

class TlsConnector final : public detail::StreamConnector<tcp> {
 public:
  TlsConnector(Reactor& reactor, std::string host, int port, ClientFactory& factory,
               const TlsClientContext& context)
      : StreamConnector(reactor, factory,
                        Address::ip(std::move(host), static_cast<std::uint16_t>(port)),
                        context.impl().options.timeout),
        context_(context) {}

  // For the shared_ptr overload: the connector keeps this alive.
  void keep_alive(std::shared_ptr<const void> owner) { owner_ = std::move(owner); }

 private:
  void established(std::uint64_t attempt, tcp::socket socket, const tcp::endpoint&) override {
    auto& impl = context_.impl();
    const auto& options = impl.options;
    auto transport = std::make_shared<TlsTransport>(reactor_, std::move(socket), impl.ctx,
                                                    options.close_timeout);
    configure_client(transport->ssl(), impl,
                     options.server_name.empty() ? get_destination().host() : options.server_name);
    pending_ = transport;
    // The connector's own timeout bounds the handshake too.
    std::weak_ptr<TlsTransport> weak = transport;
    transport->handshake(
        asio::ssl::stream_base::client, 0,
        [self = std::static_pointer_cast<TlsConnector>(shared_from_this()), attempt,
         weak](const Reason* failure) {
          auto t = weak.lock();
          if (!t || !self->current(attempt)) return;
          if (failure)
            self->fail(*failure);
          else
            self->attach(t);
        });
  }

  const TlsClientContext& context_;
  std::shared_ptr<const void> owner_;
};

}  // namespace

// --- STARTTLS: TLS through memory BIOs over whatever transport is below --------------
//
// Coalescing: while data_received runs (on TLS), plaintext written after the handshake
// gathers in corked_ instead of going to SSL_write one write at a time. Each full record
// (16 KiB) is encrypted as soon as it is there, and the rest when data_received returns,
// so a thousand small answers make two records, not a thousand. Every write path appends
// to corked_, so order is kept; whatever must follow the written bytes (close_notify on
// lose_connection or lose_write_connection) calls uncork() first. A write that takes buffer_size() (corked_
// included) above the high mark uncorks at once, so the transport
// below pauses a streaming producer from inside that write, as it would without corking.
// abort_connection and an exception from data_received drop corked_: nothing corked
// leaves, as over TCP. OpenSSL's output goes below in one write per batch, which that
// transport corks or sends as it does for any protocol.

namespace {

class StartTls final : public Protocol, public Transport {
 public:
  explicit StartTls(std::unique_ptr<Protocol> inner) : inner_(std::move(inner)) {}
  ~StartTls() override {
    if (ssl_) SSL_free(ssl_);
  }

  void begin(SSL_CTX* ctx, bool server, const TlsClientContext::Impl* client,
             const std::string& name) {
    if (ssl_) throw std::logic_error("start_tls: TLS was already started on this connection");
    if (!has_transport()) throw std::logic_error("start_tls: the connection is not up");
    ssl_ = SSL_new(ctx);
    if (!ssl_) throw std::runtime_error("start_tls: SSL_new failed");
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, rbio, wbio);
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      configure_client(ssl_, *client, name);
      SSL_set_connect_state(ssl_);
    }
    step();  // a client sends its ClientHello now
  }

  // Protocol (events from the transport below)
  void connection_made() override { inner_->make_connection(*this); }

  void data_received(std::string_view data) override {
    if (!ssl_) {
      inner_->data_received(data);
      return;
    }
    if (failed_) return;
    BIO_write(SSL_get_rbio(ssl_), data.data(), static_cast<int>(data.size()));
    delivering_ = true;
    try {
      step();
    } catch (...) {  // the transport below aborts: nothing corked may leave
      delivering_ = false;
      corked_.clear();
      throw;
    }
    delivering_ = false;
    uncork();
  }

  bool eof_received() override {
    if (!ssl_) return inner_->eof_received();
    if (!peer_closed_) {
      // The peer closed TCP without close_notify: a truncation, not a clean end.
      failure_ = Reason(error::connection_lost, {}, "the peer closed without TLS close_notify");
      return false;
    }
    // The inner protocol heard the end at the peer's close_notify already; it kept the
    // connection open (to go on writing) unless it has closed since.
    return !closing_;
  }

  void connection_lost(const Reason& reason) override {
    inner_->end_connection(failure_ ? *failure_ : reason);
  }

  // Transport (calls from the inner protocol)
  void lose_connection() override {
    if (closing_) return;
    closing_ = true;
    if (!ssl_) {
      below().lose_connection();
      return;
    }
    if (handshake_done_) finish_close();  // else once the handshake ends
  }
  void abort_connection() override {
    corked_.clear();
    below().abort_connection();
  }
  // A half-close, as over listen_ssl/connect_ssl: close_notify after every byte written,
  // and reading goes on until the peer's close_notify. Before TLS: the half-close below.
  void lose_write_connection() override {
    if (!ssl_) {
      below().lose_write_connection();
      return;
    }
    if (closing_ || failed_ || write_shut_) return;
    write_shut_ = true;
    if (peer_closed_) {  // the peer had finished first: both directions are done
      lose_connection();
      return;
    }
    if (handshake_done_) shut_write();  // else once the handshake ends
  }
  Address get_peer() const override { return below().get_peer(); }
  Address get_host() const override { return below().get_host(); }
  std::size_t buffer_size() const override {
    return below().buffer_size() + held_.size() + corked_.size();
  }
  void register_producer(Producer& p, bool streaming) override {
    below().register_producer(p, streaming);
  }
  void unregister_producer() override { below().unregister_producer(); }
  void set_write_buffer_limits(std::size_t high, std::size_t low) override {
    below().set_write_buffer_limits(high, low);
  }
  WriteBufferLimits write_buffer_limits() const override { return below().write_buffer_limits(); }
  bool connected() const override { return !closing_ && !failed_ && below().connected(); }
  int native_handle() const override { return below().native_handle(); }
  void pause_producing() override { below().pause_producing(); }
  void resume_producing() override { below().resume_producing(); }
  void stop_producing() override { lose_connection(); }

  std::optional<TlsInfo> info() const {
    if (!ssl_ || !handshake_done_) return std::nullopt;
    return info_of(ssl_);
  }

 protected:
  void write_bytes(std::string_view data) override {
    if (closing_ || failed_ || write_shut_ || data.empty()) return;
    if (!ssl_) {
      below().write(data);
      return;
    }
    if (!handshake_done_) {
      held_.append(data);
      return;
    }
    if (!delivering_) {
      encrypt(data);
      return;
    }
    corked_.append(data);
    if (buffer_size() > below().write_buffer_limits().high) {
      // Past the high mark: everything goes below now, where the write that took the
      // buffer above the mark pauses a streaming producer, as the promise says.
      uncork();
      return;
    }
    if (corked_.size() < kRecord) return;
    // Whole records go now; corked_ keeps the rest before encrypting, so that a write
    // made from inside the write below (a producer's pause_producing) comes after it.
    std::string records = std::move(corked_);
    const std::size_t whole = records.size() / kRecord * kRecord;
    corked_.assign(records, whole);
    records.resize(whole);
    encrypt(records);
  }

 private:
  Transport& below() const { return Protocol::transport(); }

  // Encrypts what was corked (before anything that must follow it).
  void uncork() {
    if (corked_.empty()) return;
    const std::string data = std::move(corked_);
    corked_.clear();
    encrypt(data);
  }

  void encrypt(std::string_view data) {
    while (!data.empty()) {
      const int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
      if (n <= 0) {
        fail(Reason(error::tls_failed, {}, "SSL_write failed"));
        return;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    flush();
  }

  // Sends whatever OpenSSL produced for the peer, in one write.
  void flush() {
    BIO* wbio = SSL_get_wbio(ssl_);
    const std::size_t pending = BIO_ctrl_pending(wbio);
    if (pending == 0) return;
    std::string out(pending, '\0');
    const int n = BIO_read(wbio, out.data(), static_cast<int>(pending));
    if (n <= 0) return;
    out.resize(static_cast<std::size_t>(n));
    below().write(std::move(out));
  }

  void step() {
    if (!handshake_done_) {
      const int r = SSL_do_handshake(ssl_);
      if (r != 1) {
        const int err = SSL_get_error(ssl_, r);
        flush();  // a fatal alert too
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
        std::string detail = "TLS handshake";
        const long verify = SSL_get_verify_result(ssl_);
        if (verify != X509_V_OK) detail = X509_verify_cert_error_string(verify);
        const unsigned long code = ERR_get_error();
        ERR_clear_error();
        std::error_code cause;
        if (code != 0) cause = std::error_code(static_cast<int>(code), asio::error::get_ssl_category());
        fail(Reason(error::tls_failed, cause, detail));
        return;
      }
      handshake_done_ = true;
      flush();
      if (!held_.empty()) {
        std::string held = std::move(held_);
        held_.clear();
        encrypt(held);
      }
      if (closing_) {
        finish_close();
        return;
      }
      if (write_shut_) shut_write();
    }
    char buf[16 * 1024];
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        inner_->data_received(std::string_view(buf, static_cast<std::size_t>(n)));
        if (failed_ || !has_transport()) return;
        continue;
      }
      const int err = SSL_get_error(ssl_, n);
      flush();
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
      if (err == SSL_ERROR_ZERO_RETURN) {  // the peer's close_notify
        peer_closed_ = true;
        if (closing_) return;
        const bool keep_open = inner_->eof_received();
        // Once our side is shut too, both directions are done.
        if (!closing_ && (!keep_open || write_shut_)) lose_connection();
        return;
      }
      const unsigned long code = ERR_get_error();
      ERR_clear_error();
      fail(Reason(error::tls_failed,
                  code ? std::error_code(static_cast<int>(code), asio::error::get_ssl_category())
                       : std::error_code(),
                  "reading a TLS record"));
      return;
    }
  }

  // Our close_notify, after what was written; OpenSSL goes on reading after it.
  void shut_write() {
    uncork();
    SSL_shutdown(ssl_);
    flush();
  }

  void finish_close() {
    uncork();
    SSL_shutdown(ssl_);  // queues close_notify
    flush();
    below().lose_connection();
  }

  void fail(Reason reason) {
    if (failed_) return;
    failed_ = true;
    corked_.clear();
    failure_ = std::move(reason);
    below().abort_connection();
  }

  static constexpr std::size_t kRecord = 16 * 1024;  // the most plaintext one record holds

  std::unique_ptr<Protocol> inner_;
  SSL* ssl_ = nullptr;
  std::string held_;    // written before the handshake completed
  std::string corked_;  // written during data_received, not yet encrypted (< kRecord)
  std::optional<Reason> failure_;
  bool handshake_done_ = false;
  bool closing_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  bool delivering_ = false;  // in data_received, on TLS: writes are corked
  bool write_shut_ = false;  // lose_write_connection on TLS: close_notify sent or due
};

StartTls& wrapper(Transport& transport) {
  auto* w = dynamic_cast<StartTls*>(&transport);
  if (!w)
    throw std::logic_error(
        "start_tls: the transport is not a with_start_tls wrapper (wrap the protocol with "
        "with_start_tls when the factory builds it)");
  return *w;
}

}  // namespace

std::unique_ptr<Protocol> with_start_tls(std::unique_ptr<Protocol> inner) {
  if (!inner) throw std::invalid_argument("with_start_tls: null protocol");
  return std::make_unique<StartTls>(std::move(inner));
}

void start_tls(Transport& transport, const TlsClientContext& context,
               const std::string& server_name) {
  auto& impl = context.impl();
  wrapper(transport).begin(const_cast<asio::ssl::context&>(impl.ctx).native_handle(), false,
                           &impl, server_name);
}

void start_tls(Transport& transport, const TlsServerContext& context) {
  wrapper(transport).begin(context.impl().ctx.native_handle(), true, nullptr, {});
}

std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          const TlsServerContext& context,
                                          const std::string& interface) {
  const auto ep = detail::tcp_listen_endpoint(interface, port, "listen_ssl");
  auto listening = std::make_shared<TlsPort>(reactor, factory, context);
  std::error_code ec;
  listening->open(ep, ec);
  auto opened = detail::opened(reactor, std::move(listening), ec);
  if (ec)
    throw std::system_error(ec, "listen_ssl on " + (interface.empty() ? "*" : interface) + ":" +
                                    std::to_string(port));
  return opened;
}

std::shared_ptr<Connector> connect_ssl(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory, const TlsClientContext& context) {
  detail::check_port(port, 1, "connect_ssl");
  if (host.empty()) throw std::invalid_argument("connect_ssl: empty host");
  auto connector = std::make_shared<TlsConnector>(reactor, std::move(host), port, factory, context);
  connector->connect();
  return connector;
}

std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          std::shared_ptr<const TlsServerContext> context,
                                          const std::string& interface) {
  if (!context) throw std::invalid_argument("listen_ssl: null context");
  auto listening = std::static_pointer_cast<TlsPort>(
      listen_ssl(reactor, port, factory, *context, interface));
  listening->keep_alive(std::move(context));
  return listening;
}

std::shared_ptr<Connector> connect_ssl(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory,
                                       std::shared_ptr<const TlsClientContext> context) {
  if (!context) throw std::invalid_argument("connect_ssl: null context");
  auto connector = std::static_pointer_cast<TlsConnector>(
      connect_ssl(reactor, std::move(host), port, factory, *context));
  connector->keep_alive(std::move(context));  // begin() runs later, from the loop
  return connector;
}

std::optional<TlsInfo> tls_info(const Transport& transport) {
  if (const auto* t = dynamic_cast<const TlsTransport*>(&transport)) return t->info();
  if (const auto* w = dynamic_cast<const StartTls*>(&transport)) return w->info();
  return std::nullopt;
}

}  // namespace torsion
