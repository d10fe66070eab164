#pragma once
/// \file
/// TLS over TCP (OpenSSL, through memory BIOs over the stream engine): listen_ssl,
/// listen_ssl_pool, connect_ssl and start_tls. Link `torsion_tls` (meson:
/// torsion_tls_dep), which brings in OpenSSL.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/reactor_pool.hpp"

namespace torsion {

/// Whether a TLS server asks its clients for a certificate (mutual TLS).
enum class VerifyClient : std::uint8_t {
  none,      ///< never asks (the default)
  optional,  ///< asks; a client without one is accepted, one presented must verify
  required,  ///< asks; a client without a certificate, or an untrusted one, is refused
};

/// A TLS protocol version, for the min_version / max_version options.
enum class TlsVersion : std::uint8_t {
  tls1_2,  ///< TLS 1.2
  tls1_3,  ///< TLS 1.3
};

/// What both sides may restrict about the ciphers and versions they negotiate, and the
/// passphrase of an encrypted private key. Every string empty means OpenSSL's default.
struct TlsCryptoOptions {
  /// The oldest version accepted (TLS 1.0 and 1.1 are never offered).
  TlsVersion min_version = TlsVersion::tls1_2;
  /// The newest version offered. Throws std::invalid_argument if below min_version.
  TlsVersion max_version = TlsVersion::tls1_3;
  /// TLS 1.2 ciphers, in OpenSSL's cipher-list syntax ("ECDHE+AESGCM:ECDHE+CHACHA20").
  /// Throws std::invalid_argument if it names no cipher OpenSSL knows.
  std::string cipher_list;
  /// TLS 1.3 cipher suites, colon-separated ("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256").
  /// Throws std::invalid_argument if it names none OpenSSL knows.
  std::string cipher_suites;
  /// The passphrase of an encrypted PEM private key (file or memory); empty for a key that
  /// is not encrypted. A wrong or missing passphrase throws std::invalid_argument.
  std::string private_key_passphrase;
};

/// A certificate a TLS server presents to clients that ask for `host_name` by SNI.
struct TlsSniCertificate {
  /// The name, compared without regard to case; "*.example.com" matches one label
  /// in its place (a.example.com, not example.com nor a.b.example.com).
  std::string host_name;
  /// PEM file with the certificate followed by its chain.
  std::string certificate_chain_file;
  /// PEM file with its private key.
  std::string private_key_file;
};

/// What a TLS server presents and accepts.
struct TlsServerOptions : TlsCryptoOptions {
  /// PEM file with the server's certificate followed by its chain.
  std::string certificate_chain_file;
  /// PEM file with the private key of that certificate.
  std::string private_key_file;
  /// The certificate chain as PEM text, instead of certificate_chain_file (give one of
  /// the two; both throws std::invalid_argument).
  std::string certificate_chain_pem;
  /// The private key as PEM text, instead of private_key_file (one of the two).
  std::string private_key_pem;
  /// PEM file of more chain certificates, sent after those of certificate_chain_file
  /// (Twisted's extraCertChain); empty for none. Throws as for the other files.
  std::string extra_chain_file;
  /// Length of the kernel's queue of connections not yet accepted, on every port that
  /// listens with this context; 1..65535 (std::invalid_argument otherwise).
  int backlog = 511;
  /// Protocols offered for ALPN, most preferred first (e.g. {"h2", "http/1.1"}); empty
  /// for no ALPN. A client offering none of them is still accepted, with no protocol.
  std::vector<std::string> alpn;
  /// Seconds a client may take to complete the handshake.
  double handshake_timeout = 30;
  /// Seconds to wait for the peer's close_notify after sending ours on lose_connection.
  double close_timeout = 5;
  /// Whether to ask clients for a certificate, verified against ca_file / ca_directory
  /// (chain and dates; no name check). Not `none` needs a CA; a CA with `none` throws
  /// std::invalid_argument (it would trust nobody's certificate silently).
  VerifyClient verify_client = VerifyClient::none;
  /// PEM file of the certificate authorities whose client certificates are trusted; their
  /// names are also sent to the client as the acceptable issuers.
  std::string ca_file;
  /// A directory whose every `*.pem` file holds trusted client CAs (as the client side's
  /// ca_directory); with ca_file, both are trusted. Throws as the client side does.
  std::string ca_directory;
  /// Called from the loop for every accepted connection whose handshake failed (timed
  /// out, not TLS, or a client certificate missing or untrusted, with error::tls_failed
  /// and OpenSSL's reason), with the peer's address; no protocol was ever built for it.
  /// Empty: the failure is only logged (at info level, as it always is). An exception
  /// from it is logged and dropped.
  std::function<void(const Address& peer, const Reason& reason)> handshake_failed;
  /// Session resumption with TLS session tickets (TLS 1.3 and 1.2): the server hands the
  /// client an encrypted ticket after the handshake, and a client that comes back with it
  /// skips the certificate exchange. The ticket keys survive reload().
  bool session_tickets = true;
  /// Sessions the server remembers for clients that resume by session id (TLS 1.2, or
  /// with session_tickets off); 0 remembers none. The cache is bounded by this.
  std::size_t session_cache_size = 1024;
  /// Seconds a session may be resumed after its full handshake (ticket or cache).
  double session_lifetime = 7200;
  /// More certificates, chosen by the name the client sends as SNI (the first entry that
  /// matches; an exact name is best listed before a wildcard). A client that sends no
  /// SNI, or a name none matches, gets certificate_chain_file. Everything else (ALPN,
  /// client verification, timeouts) is shared. Each file is loaded when the context is
  /// made; a missing file, a key that does not match, or an empty or duplicate
  /// host_name throws std::invalid_argument naming it.
  std::vector<TlsSniCertificate> sni_certificates;
};

/// How a TLS client checks the server. Verification is on unless switched off here.
struct TlsClientOptions : TlsCryptoOptions {
  /// PEM file of the certificate authorities to trust. When this, ca_directory and ca_pem
  /// are all empty: the system's default store.
  std::string ca_file;
  /// Certificate authorities to trust, as PEM text (one or more certificates), with
  /// ca_file and ca_directory if given. Throws std::invalid_argument if it holds none.
  std::string ca_pem;
  /// A directory whose every `*.pem` file holds certificate authorities to trust (as
  /// Twisted's caCertsDir); with ca_file, both are trusted. Throws std::invalid_argument
  /// for an unreadable directory, one without a .pem file, or a .pem file that is not PEM.
  std::string ca_directory;
  /// PEM file of a client certificate (and its chain) presented when the server asks for
  /// one; empty for none.
  std::string certificate_file;
  /// PEM file with the key of certificate_file; empty: the key is in certificate_file.
  std::string private_key_file;
  /// The client certificate (and chain) as PEM text, instead of certificate_file.
  std::string certificate_pem;
  /// Its private key as PEM text, instead of private_key_file.
  std::string private_key_pem;
  /// Check the server's certificate chain and its name. Setting this false accepts any
  /// server (man-in-the-middle included): for tests and debugging only.
  bool verify_peer = true;
  /// The name sent as SNI and checked against the certificate; empty: the host given to
  /// connect_ssl (a numeric host is checked as an IP address and sent without SNI).
  std::string server_name;
  /// Protocols offered for ALPN, most preferred first.
  std::vector<std::string> alpn;
  /// Seconds for resolving, connecting and the handshake together; 0 for no limit.
  double timeout = 30;
  /// Seconds to wait for the peer's close_notify after sending ours on lose_connection.
  double close_timeout = 5;
  /// Remember the session of each server (by server name and address) and offer it on the
  /// next connection to the same one, which then skips the certificate exchange when the
  /// server agrees (tls_info's `resumed`). At most 256 servers are remembered, the oldest
  /// forgotten first.
  bool reuse_sessions = false;
};

/// A loaded server configuration (certificates and keys are read once, when it is made,
/// and again on reload()). Share one among many ports, and among the reactors of a pool.
class TlsServerContext {
 public:
  /// Loads the files. Throws std::invalid_argument naming the file and OpenSSL's reason
  /// when a file cannot be read or the key does not match the certificate.
  explicit TlsServerContext(const TlsServerOptions& options);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  /// Loads `options` anew (a renewed certificate and key, CAs, ciphers, timeouts...) and
  /// serves every connection accepted from now on with them, on every port that uses this
  /// context; connections already accepted keep what they started with. Session tickets
  /// issued before stay valid. The port's backlog is not changed. Throws as the
  /// constructor does, and then the context is unchanged. Safe from any thread.
  void reload(const TlsServerOptions& options);

  /// Internal: the OpenSSL state, defined in transports/tls_context.cpp.
  struct Impl;
  /// Internal: the configuration in force (a connection keeps the one it started with).
  std::shared_ptr<const Impl> impl() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Impl> impl_;
};

/// A loaded client configuration. Share one among many connections.
class TlsClientContext {
 public:
  /// Loads the trust store and the client certificate. Throws std::invalid_argument
  /// naming the file for an unreadable ca_file, ca_directory, certificate or key, or a key
  /// that does not match the certificate.
  explicit TlsClientContext(const TlsClientOptions& options = {});
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  /// Internal: the OpenSSL state, defined in transports/tls.cpp.
  struct Impl;
  /// Internal: for transports/tls.cpp.
  Impl& impl() const noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

/// What was negotiated on a TLS connection.
struct TlsInfo {
  std::string version;      ///< "TLSv1.3"
  std::string cipher;       ///< "TLS_AES_256_GCM_SHA384"
  std::string alpn;         ///< the ALPN protocol, empty when none was agreed
  std::string server_name;  ///< the SNI name the client sent (server side) or used
  std::string peer_subject; ///< the peer certificate's subject, empty when none
  /// The peer certificate's common name (the last CN of its subject), empty when none.
  std::string peer_common_name;
  /// The peer presented a certificate (a client: only when the server asked for one).
  bool peer_certificate = false;
  /// The peer's certificate was presented and its chain verified against the trusted
  /// CAs (on a server with verify_client not `none` this holds whenever one was
  /// presented, since an untrusted one fails the handshake).
  bool peer_verified = false;
  /// The session was resumed from an earlier one (a ticket or the server's cache): no
  /// certificate was exchanged this time; the peer_ fields are the session's.
  bool resumed = false;
};

/// Where and how listen_ssl listens: the fields of TcpListenOptions, with the TLS
/// listener's own limit beside them (what the connections present and accept is the
/// TlsServerContext's).
struct TlsListenOptions {
  /// Address to bind: "" for every IPv4 interface, "::" for every IPv6 (and usually IPv4)
  /// interface, or a numeric address such as "127.0.0.1" or "::1".
  std::string interface;
  /// Length of the kernel's queue of connections not yet accepted; 1..65535.
  int backlog = 511;
  /// Set SO_REUSEPORT, so that several reactors can each listen on the same port
  /// (listen_ssl_pool sets it).
  bool reuse_port = false;
  /// TCP_NODELAY on every accepted connection (as TcpListenOptions::no_delay).
  bool no_delay = true;
  /// Handshakes in progress at once on this port. A connection accepted while this many
  /// are under way is closed at once, before any TLS work (a line is logged, at most one a
  /// second with the count); 0: no limit. A handshake holds about 2 KiB until the
  /// ClientHello arrives, then about 45 KiB (mostly OpenSSL's) until it completes or
  /// handshake_timeout ends it.
  std::size_t max_handshakes = 1024;
};

/// Listens on `port` like listen_tcp; each accepted connection does the TLS handshake
/// first and only then gets a protocol from `factory` (so a failed handshake, logged at
/// info level and passed to TlsServerOptions::handshake_failed, never reaches a
/// protocol). With verify_client, tls_info(transport) in connection_made tells whether the
/// client presented a certificate and whose it is. `context` must outlive the port and its
/// connections. Throws as listen_tcp does.
std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          const TlsServerContext& context,
                                          const std::string& interface = "");

/// As above, sharing ownership of `context`: the port, and every handshake it starts,
/// keep it alive, so the caller may drop its reference at once (endpoints do).
/// Throws std::invalid_argument for a null context, else as above.
std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          std::shared_ptr<const TlsServerContext> context,
                                          const std::string& interface = "");

/// As listen_ssl above, listening as `options` say (their backlog, not the context's).
/// Throws std::invalid_argument for a backlog outside 1..65535, else as above.
std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          std::shared_ptr<const TlsServerContext> context,
                                          const TlsListenOptions& options);

/// TLS on every reactor of `pool`, as listen_tcp_pool does for TCP: one SO_REUSEPORT
/// socket per reactor on the same port, the kernel spreading connections over them, each
/// connection (handshake included) on one reactor's thread for good. Returns the ports,
/// index i on reactor i. `factory` is called from every reactor's thread at once, so it
/// must be thread-safe; so must TlsServerOptions::handshake_failed. The context is shared
/// by every reactor (OpenSSL allows that) and kept alive by the ports. Call it before
/// pool.start(). Throws std::logic_error if the pool is started, std::invalid_argument for
/// a null context or bad options, std::system_error if a socket cannot be bound (those
/// bound so far are closed again).
std::vector<std::shared_ptr<ListeningPort>> listen_ssl_pool(
    ReactorPool& pool, int port, Factory& factory,
    std::shared_ptr<const TlsServerContext> context, TlsListenOptions options = {});

/// Connects like connect_tcp, then does the TLS handshake (SNI, verification, ALPN as
/// the context says). A failed handshake arrives as client_connection_failed with
/// error::tls_failed and a message that says why (e.g. "certificate verify failed:
/// unable to get local issuer certificate", "hostname mismatch", "certificate has
/// expired", "wrong version number" for a peer that does not speak TLS). A server that
/// refuses our client certificate (missing or untrusted) does so, under TLS 1.3, after our
/// side of the handshake completed: the protocol then hears connection_made, then
/// connection_lost with error::tls_failed and the server's alert ("tlsv13 alert
/// certificate required", "tlsv1 alert unknown ca").
///
/// On the connection (either side): writes made during one callback are coalesced into
/// as few TLS records as possible; lose_connection sends close_notify after the queued
/// bytes and waits for the peer's close_notify at most close_timeout seconds.
/// lose_write_connection is a half-close: after the queued bytes it sends close_notify
/// and keeps reading; the peer's protocol hears eof_received, may go on writing, and
/// when its close_notify arrives this side hears eof_received and the connection closes
/// cleanly. There is no deadline while half-closed (as over TCP); a lose_connection then
/// waits at most close_timeout. `context` must outlive the connector and its
/// connections.
std::shared_ptr<Connector> connect_ssl(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory, const TlsClientContext& context);

/// As above, sharing ownership of `context`: the connector keeps it alive (for every
/// connect() on it), so the caller may drop its reference at once. Throws
/// std::invalid_argument for a null context, else as above.
std::shared_ptr<Connector> connect_ssl(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory,
                                       std::shared_ptr<const TlsClientContext> context);

/// Wraps `inner` so that it can later switch its connection to TLS with start_tls
/// (STARTTLS), over any stream transport (TCP, Unix, in-memory). Until then every event
/// and call passes straight through; `inner`'s transport() is the wrapper. Throws
/// std::invalid_argument for a null protocol.
std::unique_ptr<Protocol> with_start_tls(std::unique_ptr<Protocol> inner);

/// Switches the connection behind `transport` (the transport() of a protocol wrapped by
/// with_start_tls) to TLS as a client, verifying the server as `context` says under the
/// name `server_name` (also sent as SNI unless it is a numeric address). Every byte
/// written before the call is sent in clear first, in order; every byte written after it
/// is held until the handshake completes and then sent encrypted. Bytes received in the
/// data_received call that makes the switch count as clear text; later ones as TLS.
/// A failed handshake ends the connection with error::tls_failed saying why.
/// Writes made during one data_received are coalesced: each full record (16 KiB of
/// plaintext) is encrypted as soon as it is there, the rest when data_received returns,
/// in order with every other write; a write that takes buffer_size() above the high mark
/// hands everything on at once (a streaming producer is paused from inside it). Writes
/// made elsewhere gather the same way until the loop turn that made them ends (as over
/// listen_ssl/connect_ssl); outside the loop's turns they are encrypted at once.
/// lose_connection then sends close_notify and, over a socket of a reactor, waits for the
/// peer's as connect_ssl does (close_timeout of `context`; over an in-memory transport it
/// does not wait). Bytes written before the handshake is done count in buffer_size(): a
/// streaming producer is paused above the high mark; pause_producing before then holds
/// the delivery, not the handshake.
/// lose_write_connection is a half-close, as on connect_ssl: after the written bytes it
/// sends close_notify and keeps reading; when the peer's close_notify arrives the
/// protocol hears eof_received and the connection closes cleanly (before start_tls it is
/// the half-close of the transport below).
/// Throws std::logic_error if `transport` is not a with_start_tls wrapper or TLS was
/// already started. `context` must outlive the connection.
void start_tls(Transport& transport, const TlsClientContext& context,
               const std::string& server_name);

/// As above, as the TLS server.
void start_tls(Transport& transport, const TlsServerContext& context);

/// The negotiated parameters when `transport` is a TLS transport (or a with_start_tls
/// wrapper whose handshake completed), else nullopt. Looks through ProtocolWrappers
/// (TimeoutFactory, ConnectionLimitFactory...) to the transport beneath, as start_tls
/// does to find the with_start_tls layer.
[[nodiscard]] std::optional<TlsInfo> tls_info(const Transport& transport);

}  // namespace torsion
