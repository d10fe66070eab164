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

/// What a PROXY header says.
struct ProxyHeader {
  /// One v2 TLV (type-length-value) extension.
  struct Tlv {
    /// PP2_TYPE_* code (e.g. 0x01 ALPN, 0x02 authority).
    std::uint8_t type = 0;
    /// The raw value bytes.
    std::string value;
  };
  int version = 0;  ///< 1 or 2
  /// True when the header carries no client address to use: v1 "UNKNOWN", v2 LOCAL
  /// (health checks), or v2 with an unspecified family. The real addresses apply.
  bool local = false;
  Address source;         ///< the client, when !local
  Address destination;    ///< the address the client connected to, when !local
  std::vector<Tlv> tlvs;  ///< v2 extensions, in order (framing validated)
};

/// Which headers to accept, and the size limit.
struct ProxyOptions {
  bool accept_v1 = true;  ///< accept the text form
  bool accept_v2 = true;  ///< accept the binary form
  /// The largest v2 header accepted, fixed part (16 bytes) included; at most 16 + 65535.
  /// A larger announced length is rejected before its bytes are read.
  std::size_t max_v2_length = 4096;
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
/// block that fits the announced length and TLVs that fill the rest exactly.
/// Monotone: once a prefix is complete or invalid, every longer input gives the same
/// result, so the outcome never depends on how the bytes were split. Never reads outside
/// `data`, never throws for any input, allocates at most the header's size.
ProxyParseResult parse_proxy_header(std::string_view data, const ProxyOptions& options = {});

/// Wraps a factory for connections that start with a PROXY header. For each
/// connection the header is read (at most the size limit, buffered) before anything else
/// happens; then the wrapped factory's build_protocol is called with the client address
/// from the header, the protocol hears connection_made, and every byte after the header
/// reaches it unchanged. Its transport's get_peer() and get_host() return the header's
/// source and destination (the real ones for a local header). A bad, over-long or
/// unaccepted header, or end-of-file before a complete one, closes the connection
/// cleanly (lose_connection) without building a protocol; last_rejection() says why.
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

}  // namespace torsion
