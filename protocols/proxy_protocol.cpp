#include "protocols/proxy_protocol.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "protocols/detail/proxy_wire.hpp"

namespace torsion {

namespace {

using Status = ProxyParseResult::Status;

using namespace detail::proxy_wire;

ProxyParseResult invalid(error kind, std::string detail) {
  ProxyParseResult r;
  r.status = Status::invalid;
  r.error = Reason(kind, {}, "PROXY header: " + detail);
  return r;
}

ProxyParseResult incomplete() { return {}; }

// True when `data` is a prefix of `signature` or starts with all of it.
bool compatible(std::string_view data, std::string_view signature) {
  const std::size_t n = std::min(data.size(), signature.size());
  return data.substr(0, n) == signature.substr(0, n);
}

// Decimal 0..65535, no sign, no leading zero (except "0" itself).
bool parse_port(std::string_view s, std::uint16_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// An address of `family` in text; returns its canonical form, or nothing.
std::optional<std::string> parse_ip(std::string_view s, int family) {
  std::array<char, INET6_ADDRSTRLEN + 1> text{};
  if (s.empty() || s.size() >= text.size()) return std::nullopt;
  std::memcpy(text.data(), s.data(), s.size());
  std::array<unsigned char, 16> binary{};
  if (inet_pton(family, text.data(), binary.data()) != 1) return std::nullopt;
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (!inet_ntop(family, binary.data(), out.data(), static_cast<socklen_t>(out.size())))
    return std::nullopt;
  return std::string(out.data());
}

std::string ntop(int family, const char* bytes) {
  std::array<char, INET6_ADDRSTRLEN> out{};
  inet_ntop(family, bytes, out.data(), static_cast<socklen_t>(out.size()));
  return std::string(out.data());
}

std::uint16_t be16(const char* p) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                                    static_cast<unsigned char>(p[1]));
}

std::uint32_t be32(const char* p) {
  return (static_cast<std::uint32_t>(be16(p)) << 16) | be16(p + 2);
}

std::string unix_path(const char* p) {
  const char* end = static_cast<const char*>(std::memchr(p, '\0', kUnixPath));
  return std::string(p, end ? static_cast<std::size_t>(end - p) : kUnixPath);
}

ProxyParseResult parse_v1(std::string_view data) {
  // Find the CRLF; every byte before it must be printable ASCII. The whole line, CRLF
  // included, is at most 107 bytes, so the CR may stand at index 105 at the latest: once
  // 106 bytes hold no CR, no later byte can complete a line within the limit.
  std::size_t end = std::string_view::npos;
  constexpr std::size_t last_cr = kProxyV1MaxLength - 2;
  const std::size_t limit = std::min(data.size(), last_cr + 1);
  for (std::size_t i = kV1Signature.size(); i < limit; ++i) {
    const char c = data[i];
    if (c == '\r') {
      if (i + 1 == data.size()) return incomplete();
      if (data[i + 1] != '\n') return invalid(error::malformed_input, "v1: CR without LF");
      end = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return invalid(error::malformed_input, "v1: non-printable byte");
  }
  if (end == std::string_view::npos) {
    if (data.size() > last_cr)
      return invalid(error::length_limit_exceeded, "v1: no CRLF within 107 bytes");
    return incomplete();
  }
  ProxyParseResult r;
  r.status = Status::complete;
  r.consumed = end + 2;
  r.header.version = 1;
  std::string_view line = data.substr(kV1Signature.size(), end - kV1Signature.size());
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {  // the rest is to be ignored
    r.header.local = true;
    return r;
  }
  std::array<std::string_view, 5> fields;
  for (std::size_t f = 0; f < fields.size(); ++f) {
    const std::size_t space = line.find(' ');
    if (f + 1 < fields.size()) {
      if (space == std::string_view::npos)
        return invalid(error::malformed_input, "v1: too few fields");
      fields[f] = line.substr(0, space);
      line.remove_prefix(space + 1);
    } else {
      if (space != std::string_view::npos)
        return invalid(error::malformed_input, "v1: too many fields");
      fields[f] = line;
    }
  }
  int family = 0;
  if (fields[0] == "TCP4")
    family = AF_INET;
  else if (fields[0] == "TCP6")
    family = AF_INET6;
  else
    return invalid(error::malformed_input, "v1: unknown protocol");
  const auto src = parse_ip(fields[1], family);
  const auto dst = parse_ip(fields[2], family);
  if (!src || !dst) return invalid(error::malformed_input, "v1: bad address");
  std::uint16_t sport = 0, dport = 0;
  if (!parse_port(fields[3], sport) || !parse_port(fields[4], dport))
    return invalid(error::malformed_input, "v1: bad port");
  r.header.source = Address::ip(*src, sport);
  r.header.destination = Address::ip(*dst, dport);
  return r;
}

ProxyParseResult too_many_tlvs(std::size_t max_tlvs) {
  return invalid(error::length_limit_exceeded,
                 "v2: more than " + std::to_string(max_tlvs) + " TLVs");
}

// The SSL TLV's value: client (1), verify (4, big-endian), then sub-TLVs that fill the
// rest exactly and count towards max_tlvs. Returns the verdict when it is invalid.
std::optional<ProxyParseResult> parse_ssl(std::string_view value, ProxySslInfo& out,
                                          std::size_t& count, std::size_t max_tlvs) {
  if (value.size() < 5) return invalid(error::malformed_input, "v2: SSL TLV shorter than 5 bytes");
  out.client = static_cast<std::uint8_t>(value[0]);
  out.verify = be32(value.data() + 1);
  std::size_t at = 5;
  while (at < value.size()) {
    if (value.size() - at < 3) return invalid(error::malformed_input, "v2: truncated SSL sub-TLV");
    const std::size_t sub_length = be16(value.data() + at + 1);
    if (value.size() - at - 3 < sub_length)
      return invalid(error::malformed_input, "v2: SSL sub-TLV overruns its TLV");
    if (++count > max_tlvs) return too_many_tlvs(max_tlvs);
    out.sub_tlvs.push_back(
        {static_cast<std::uint8_t>(value[at]), std::string(value.substr(at + 3, sub_length))});
    at += 3 + sub_length;
  }
  return std::nullopt;
}

ProxyParseResult parse_v2(std::string_view data, std::size_t max_length, std::size_t max_tlvs) {
  if (data.size() > 12 && (static_cast<unsigned char>(data[12]) >> 4) != 2)
    return invalid(error::malformed_input, "v2: bad version");
  const unsigned command = data.size() > 12 ? static_cast<unsigned char>(data[12]) & 0xfu : 0;
  if (command > 1) return invalid(error::malformed_input, "v2: bad command");
  const unsigned family = data.size() > 13 ? static_cast<unsigned char>(data[13]) >> 4 : 0;
  const unsigned transport = data.size() > 13 ? static_cast<unsigned char>(data[13]) & 0xfu : 0;
  if (family > 3 || transport > 2)
    return invalid(error::malformed_input, "v2: bad address family or transport");
  if (data.size() < kV2Fixed) return incomplete();
  const std::size_t length = be16(data.data() + 14);
  if (kV2Fixed + length > max_length)
    return invalid(error::length_limit_exceeded, "v2: " + std::to_string(kV2Fixed + length) +
                                                     " bytes exceed the limit of " +
                                                     std::to_string(max_length));
  if (data.size() < kV2Fixed + length) return incomplete();

  ProxyParseResult r;
  r.status = Status::complete;
  r.consumed = kV2Fixed + length;
  r.header.version = 2;
  const char* body = data.data() + kV2Fixed;
  std::size_t address_size = 0;
  switch (family) {
    case 1:
      address_size = 12;
      break;
    case 2:
      address_size = 36;
      break;
    case 3:
      address_size = 2 * kUnixPath;
      break;
    default:
      address_size = 0;
      break;
  }
  if (length < address_size) return invalid(error::malformed_input, "v2: address block too short");
  if (command == 0 || family == 0) {
    r.header.local = true;  // LOCAL (health check) or unspecified: keep the real addresses
  } else if (family == 1) {
    r.header.source = Address::ip(ntop(AF_INET, body), be16(body + 8));
    r.header.destination = Address::ip(ntop(AF_INET, body + 4), be16(body + 10));
  } else if (family == 2) {
    r.header.source = Address::ip(ntop(AF_INET6, body), be16(body + 32));
    r.header.destination = Address::ip(ntop(AF_INET6, body + 16), be16(body + 34));
  } else {
    r.header.source = Address::unix_socket(unix_path(body));
    r.header.destination = Address::unix_socket(unix_path(body + kUnixPath));
  }
  // TLVs: type (1), length (2), value; they must fill the rest exactly.
  std::size_t count = 0;
  std::size_t at = address_size;
  while (at < length) {
    if (length - at < 3) return invalid(error::malformed_input, "v2: truncated TLV");
    const std::size_t tlv_length = be16(body + at + 1);
    if (length - at - 3 < tlv_length)
      return invalid(error::malformed_input, "v2: TLV overruns the header");
    if (++count > max_tlvs) return too_many_tlvs(max_tlvs);
    const auto type = static_cast<std::uint8_t>(body[at]);
    const std::string_view value(body + at + 3, tlv_length);
    if (type == proxy_tlv::unique_id && value.size() > kUniqueIdMax)
      return invalid(
          error::malformed_input,
          "v2: unique id TLV of " + std::to_string(value.size()) + " bytes (at most 128)");
    if (type == proxy_tlv::crc32c) {
      if (value.size() != 4)
        return invalid(error::malformed_input, "v2: CRC32c TLV of " +
                                                   std::to_string(value.size()) +
                                                   " bytes (must be 4)");
      const std::size_t field = kV2Fixed + at + 3;
      if (crc32c_with_zeroed_field(data.substr(0, r.consumed), field) != be32(value.data()))
        return invalid(error::malformed_input, "v2: CRC32c checksum mismatch");
    }
    if (type == proxy_tlv::ssl) {
      ProxySslInfo ssl;
      if (auto bad = parse_ssl(value, ssl, count, max_tlvs)) return std::move(*bad);
      if (!r.header.ssl) r.header.ssl = std::move(ssl);
    }
    r.header.tlvs.push_back({type, std::string(value)});
    at += 3 + tlv_length;
  }
  return r;
}

}  // namespace

namespace {

template <class List>
const ProxyTlv* find_in(const List& tlvs, std::uint8_t type) noexcept {
  for (const ProxyTlv& t : tlvs)
    if (t.type == type) return &t;
  return nullptr;
}

std::optional<std::string_view> value_of(const ProxyTlv* tlv) {
  if (!tlv) return std::nullopt;
  return std::string_view(tlv->value);
}

}  // namespace

const ProxyTlv* ProxySslInfo::find(std::uint8_t type) const noexcept {
  return find_in(sub_tlvs, type);
}
std::optional<std::string_view> ProxySslInfo::version() const {
  return value_of(find(proxy_tlv::ssl_version));
}
std::optional<std::string_view> ProxySslInfo::common_name() const {
  return value_of(find(proxy_tlv::ssl_cn));
}
std::optional<std::string_view> ProxySslInfo::cipher() const {
  return value_of(find(proxy_tlv::ssl_cipher));
}
std::optional<std::string_view> ProxySslInfo::signature_algorithm() const {
  return value_of(find(proxy_tlv::ssl_sig_alg));
}
std::optional<std::string_view> ProxySslInfo::key_algorithm() const {
  return value_of(find(proxy_tlv::ssl_key_alg));
}

const ProxyTlv* ProxyHeader::find_tlv(std::uint8_t type) const noexcept {
  return find_in(tlvs, type);
}
std::optional<std::string_view> ProxyHeader::alpn() const {
  return value_of(find_tlv(proxy_tlv::alpn));
}
std::optional<std::string_view> ProxyHeader::authority() const {
  return value_of(find_tlv(proxy_tlv::authority));
}
std::optional<std::string_view> ProxyHeader::unique_id() const {
  return value_of(find_tlv(proxy_tlv::unique_id));
}

ProxyParseResult parse_proxy_header(std::string_view data, const ProxyOptions& options) {
  if (data.empty()) return incomplete();
  if (options.accept_v1 && compatible(data, kV1Signature)) {
    if (data.size() < kV1Signature.size()) return incomplete();
    return parse_v1(data);
  }
  if (options.accept_v2 && compatible(data, kV2Signature)) {
    if (data.size() < kV2Signature.size()) return incomplete();
    return parse_v2(data, std::min(options.max_v2_length, kV2MaxLength), options.max_tlvs);
  }
  return invalid(error::malformed_input, "no PROXY signature");
}

// --- the wrapper -------------------------------------------------------------------------

// Reads the header into a buffer bounded by the limit, then builds and attaches the
// wrapped protocol and forwards everything after the header.
class ProxyProtocolWrapper final : public ProtocolWrapper {
 public:
  ProxyProtocolWrapper(ProxyProtocolFactory& factory, Address peer)
      : ProtocolWrapper(factory, nullptr, std::move(peer)), proxy_factory_(factory) {
    const ProxyOptions& o = factory.options();
    limit_ = std::max(o.accept_v1 ? kProxyV1MaxLength : 0,
                      o.accept_v2 ? std::min(o.max_v2_length, kV2MaxLength) : 0);
  }

  void data_received(std::string_view data) override {
    if (done_) return ProtocolWrapper::data_received(data);
    if (failed_ || data.empty()) return;  // an empty read tells nothing, as for the parser
    const std::size_t take = std::min(data.size(), limit_ - buffer_.size());
    buffer_.append(data.substr(0, take));
    ProxyParseResult r = parse_proxy_header(buffer_, proxy_factory_.options());
    if (r.status == ProxyParseResult::Status::invalid) return reject(std::move(*r.error));
    if (r.status == ProxyParseResult::Status::incomplete) {
      if (buffer_.size() >= limit_)  // cannot happen for a monotone parser; kept as a guard
        reject(Reason(error::length_limit_exceeded, {}, "PROXY header: too long"));
      return;
    }
    done_ = true;
    header_ = std::move(r.header);
    std::string rest = buffer_.substr(r.consumed);
    rest.append(data.substr(take));
    buffer_.clear();
    buffer_.shrink_to_fit();
    std::unique_ptr<Protocol> inner = factory().wrapped_factory().build_tracked(get_peer());
    if (!inner) {
      transport().lose_connection();
      return;
    }
    attach(std::move(inner));
    if (!rest.empty() && connected()) ProtocolWrapper::data_received(rest);
  }

  bool eof_received() override {
    if (done_) return ProtocolWrapper::eof_received();
    if (!failed_)
      reject(Reason(error::malformed_input, {}, "PROXY header: end of file before its end"));
    return false;
  }

  // The parsed header, once complete.
  const ProxyHeader* header() const noexcept { return done_ ? &header_ : nullptr; }

  Address get_peer() const override {
    return done_ && !header_.local ? header_.source : ProtocolWrapper::get_peer();
  }
  Address get_host() const override {
    return done_ && !header_.local ? header_.destination : ProtocolWrapper::get_host();
  }

 private:
  void reject(Reason reason) {
    failed_ = true;
    buffer_.clear();
    ++proxy_factory_.rejected_;
    proxy_factory_.last_rejection_ = std::move(reason);
    transport().lose_connection();
  }

  ProxyProtocolFactory& proxy_factory_;
  std::size_t limit_ = 0;
  std::string buffer_;
  ProxyHeader header_;
  bool done_ = false;
  bool failed_ = false;
};

ProxyProtocolFactory::ProxyProtocolFactory(Factory& wrapped, ProxyOptions options)
    : WrappingFactory(wrapped), options_(options) {
  if (options_.max_v2_length < kV2Fixed || options_.max_v2_length > kV2MaxLength)
    throw std::invalid_argument("ProxyProtocolFactory: max_v2_length " +
                                std::to_string(options_.max_v2_length) + " outside 16.." +
                                std::to_string(kV2MaxLength));
}

std::unique_ptr<Protocol> ProxyProtocolFactory::build_protocol(const Address& peer) {
  if (!allow(peer)) return nullptr;
  return std::make_unique<ProxyProtocolWrapper>(*this, peer);
}

const ProxyHeader* proxy_header(const Transport& transport) {
  const auto* proxy = find_transport<ProxyProtocolWrapper>(transport);
  return proxy ? proxy->header() : nullptr;
}

}  // namespace torsion
