#pragma once
/// \file
/// The PROXY protocol (HAProxy, versions 1 and 2), server side: services behind a load
/// balancer see the real client address in get_peer().

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/address.hpp"
#include "framework/reason.hpp"
#include "protocols/wrapping.hpp"

namespace torsion {

/// PP2_TYPE_* codes of the v2 TLVs the specification names (for ProxyHeader::find_tlv).
namespace proxy_tlv {
inline constexpr std::uint8_t alpn = 0x01;       ///< the negotiated application protocol
inline constexpr std::uint8_t authority = 0x02;  ///< the host name the client asked for (SNI)
inline constexpr std::uint8_t crc32c = 0x03;     ///< the header's CRC32c (verified when present)
inline constexpr std::uint8_t noop = 0x04;       ///< padding, to be ignored
inline constexpr std::uint8_t unique_id = 0x05;  ///< an opaque connection id, at most 128 bytes
inline constexpr std::uint8_t ssl = 0x20;        ///< TLS facts, with sub-TLVs (ProxySslInfo)
inline constexpr std::uint8_t ssl_version = 0x21;  ///< sub-TLV: "TLSv1.3"
inline constexpr std::uint8_t ssl_cn = 0x22;       ///< sub-TLV: the client certificate's CN
inline constexpr std::uint8_t ssl_cipher = 0x23;   ///< sub-TLV: "ECDHE-RSA-AES128-GCM-SHA256"
inline constexpr std::uint8_t ssl_sig_alg = 0x24;  ///< sub-TLV: the certificate's signature alg.
inline constexpr std::uint8_t ssl_key_alg = 0x25;  ///< sub-TLV: the certificate's key algorithm
inline constexpr std::uint8_t netns = 0x30;        ///< the network namespace's name
}  // namespace proxy_tlv

/// One v2 TLV (type-length-value) extension, or a sub-TLV of the SSL TLV.
struct ProxyTlv {
  /// PP2_TYPE_* code (see proxy_tlv).
  std::uint8_t type = 0;
  /// The raw value bytes.
  std::string value;
};

/// What the PP2_TYPE_SSL TLV (0x20) says about the client's TLS connection to the proxy.
struct ProxySslInfo {
  /// PP2_CLIENT_* bits: 0x01 the client used TLS, 0x02 it sent a certificate on this
  /// connection, 0x04 on this TLS session.
  std::uint8_t client = 0;
  /// The proxy's verification result: 0 when the client's certificate was verified,
  /// non-zero otherwise (big-endian on the wire, converted).
  std::uint32_t verify = 0;
  /// The sub-TLVs, in order (framing validated; they cannot nest further).
  std::vector<ProxyTlv> sub_tlvs;

  /// True when the client connected over TLS (bit 0x01).
  bool client_ssl() const noexcept { return (client & 0x01) != 0; }
  /// True when the client presented a certificate (bits 0x02 or 0x04) and verify is 0.
  bool client_cert_verified() const noexcept { return (client & 0x06) != 0 && verify == 0; }
  /// The first sub-TLV of `type`, or null.
  const ProxyTlv* find(std::uint8_t type) const noexcept;
  /// The TLS version (sub-TLV 0x21), e.g. "TLSv1.3", or nothing.
  std::optional<std::string_view> version() const;
  /// The client certificate's Common Name (sub-TLV 0x22), or nothing.
  std::optional<std::string_view> common_name() const;
  /// The cipher (sub-TLV 0x23), or nothing.
  std::optional<std::string_view> cipher() const;
  /// The certificate's signature algorithm (sub-TLV 0x24), or nothing.
  std::optional<std::string_view> signature_algorithm() const;
  /// The certificate's key algorithm (sub-TLV 0x25), or nothing.
  std::optional<std::string_view> key_algorithm() const;
};

/// What a PROXY header says.
struct ProxyHeader {
  /// The TLV type, under its older name.
  using Tlv = ProxyTlv;
  int version = 0;  ///< 1 or 2
  /// True when the header carries no client address to use: v1 "UNKNOWN", v2 LOCAL
  /// (health checks), or v2 with an unspecified family. The real addresses apply.
  bool local = false;
  Address source;         ///< the client, when !local
  Address destination;    ///< the address the client connected to, when !local
  std::vector<Tlv> tlvs;  ///< v2 extensions, in order (framing validated)
  /// The first SSL TLV (0x20), decoded; nothing when there is none. Its raw bytes stay in
  /// `tlvs` too.
  std::optional<ProxySslInfo> ssl;

  /// The first TLV of `type`, or null (TLVs may repeat; the others stay in `tlvs`).
  const Tlv* find_tlv(std::uint8_t type) const noexcept;
  /// The ALPN protocol the client negotiated with the proxy (TLV 0x01), e.g. "h2".
  std::optional<std::string_view> alpn() const;
  /// The authority (TLV 0x02): the host name the client asked for, usually its TLS SNI.
  std::optional<std::string_view> authority() const;
  /// The proxy's unique id for the connection (TLV 0x05, at most 128 bytes).
  std::optional<std::string_view> unique_id() const;
};

/// Which headers to accept, and the size limits.
struct ProxyOptions {
  bool accept_v1 = true;  ///< accept the text form
  bool accept_v2 = true;  ///< accept the binary form
  /// The largest v2 header accepted, fixed part (16 bytes) included; at most 16 + 65535.
  /// A larger announced length is rejected before its bytes are read.
  std::size_t max_v2_length = 4096;
  /// The most TLVs a v2 header may carry, SSL sub-TLVs included; more is
  /// length_limit_exceeded. Bounds the memory a header full of empty TLVs takes.
  std::size_t max_tlvs = 64;
};

/// The outcome of parse_proxy_header.
struct ProxyParseResult {
  /// incomplete: need more bytes; complete: `header` and `consumed` are set; invalid:
  /// `error` says why.
  enum class Status { incomplete, complete, invalid };
  /// Where parsing stands.
  Status status = Status::incomplete;
  std::size_t consumed = 0;     ///< header bytes, when complete
  ProxyHeader header;           ///< when complete
  std::optional<Reason> error;  ///< when invalid: malformed_input or length_limit_exceeded
};

/// The v1 header's maximum size, CRLF included (from the specification).
inline constexpr std::size_t kProxyV1MaxLength = 107;

/// Parses the PROXY header at the start of `data` (the bytes received so far). Strict:
/// v1 is "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" with single spaces, addresses of
/// the named family in canonical text form, decimal ports 0..65535 without leading zeros,
/// or "PROXY UNKNOWN...\r\n", printable ASCII only, at most 107 bytes; v2 has the 12-byte
/// signature, version 2, command LOCAL or PROXY, a known family and transport, an address
/// block that fits the announced length and TLVs that fill the rest exactly, at most
/// max_tlvs of them. The TLVs the helpers interpret are checked too: an SSL TLV needs its
/// 5-byte fixed part and sub-TLVs that fill the rest exactly, and a unique id is at most
/// 128 bytes; a CRC32c TLV must be 4 bytes holding (big-endian) the CRC32c of the whole
/// header with that field zeroed, as the specification says (each CRC32c TLV, if several,
/// is checked the same way); anything else is malformed_input (the connection is refused,
/// not passed on with a half-read header or a corrupted one). Other TLV values are not
/// interpreted.
/// Monotone: once a prefix is complete or invalid, every longer input gives the same
/// result, so the outcome never depends on how the bytes were split. Never reads outside
/// `data`, never throws for any input, allocates in proportion to the header's size (at
/// most about twice it, plus one small record per TLV).
ProxyParseResult parse_proxy_header(std::string_view data, const ProxyOptions& options = {});

/// Wraps a factory for connections that start with a PROXY header. For each
/// connection the header is read (at most the size limit, buffered) before anything else
/// happens; then the wrapped factory's build_protocol is called with the client address
/// from the header, the protocol hears connection_made, and every byte after the header
/// reaches it unchanged. Its transport's get_peer() and get_host() return the header's
/// source and destination (the real ones for a local header). A bad, over-long or
/// unaccepted header, or end-of-file before a complete one, closes the connection
/// cleanly (lose_connection) without building a protocol; last_rejection() says why.
/// The wrapped protocol reads the whole header (TLVs included) with
/// proxy_header(transport()).
/// Combine with TimeoutFactory to bound how long a peer may take to send its header, and
/// wrap a PeerConnectionLimitFactory (not the other way round) to limit connections per
/// real client: the wrapped factory is asked with the header's source address.
class ProxyProtocolFactory : public WrappingFactory {
 public:
  /// Throws std::invalid_argument if max_v2_length is below 16 or above 16 + 65535.
  explicit ProxyProtocolFactory(Factory& wrapped, ProxyOptions options = {});

  /// Builds the header-reading wrapper; the wrapped factory is asked later.
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;

  /// The options in force.
  const ProxyOptions& options() const noexcept { return options_; }
  /// How many connections were closed for a bad header.
  std::size_t rejected_count() const noexcept { return rejected_; }
  /// Why the last bad header was rejected.
  const std::optional<Reason>& last_rejection() const noexcept { return last_rejection_; }

 private:
  friend class ProxyProtocolWrapper;
  ProxyOptions options_;
  std::size_t rejected_ = 0;
  std::optional<Reason> last_rejection_;
};

/// The PROXY header of the connection behind `transport`: the one a ProxyProtocolFactory
/// wrapper read, found through any ProtocolWrappers stacked between it and `transport`
/// (so a protocol may call proxy_header(transport()) also when another wrapping factory,
/// such as PeerConnectionLimitFactory, sits inside the PROXY one). Null when no PROXY
/// wrapper is in the chain, or before its header is complete (never the case for the
/// protocols it builds). Valid until that connection's connection_lost returns.
[[nodiscard]] const ProxyHeader* proxy_header(const Transport& transport);

}  // namespace torsion
