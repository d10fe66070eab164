#include "protocols/proxy_header_writer.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "protocols/detail/proxy_wire.hpp"

namespace torsion {

namespace {

using namespace detail::proxy_wire;

[[noreturn]] void refuse(const std::string& why) {
  throw std::invalid_argument("format_proxy_header: " + why);
}

// The 4 or 16 bytes of a numeric IP address; an IPv4 one as ::ffff:a.b.c.d when `as_v6`.
std::string ip_bytes(const Address& a, bool as_v6) {
  std::array<unsigned char, 16> b{};
  const bool v6 = a.family() == Address::Family::ipv6;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, a.host().c_str(), v6 || !as_v6 ? b.data() : b.data() + 12) != 1)
    refuse("'" + a.host() + "' is not a numeric IPv" + (v6 ? "6" : "4") + " address");
  if (!v6 && as_v6) {
    b[10] = 0xff;
    b[11] = 0xff;
    return std::string(reinterpret_cast<const char*>(b.data()), 16);
  }
  return std::string(reinterpret_cast<const char*>(b.data()), v6 ? 16 : 4);
}

std::string ip_text(const std::string& bytes) {
  std::array<char, INET6_ADDRSTRLEN> out{};
  inet_ntop(bytes.size() == 4 ? AF_INET : AF_INET6, bytes.data(), out.data(),
            static_cast<socklen_t>(out.size()));
  return out.data();
}

bool is_ip(const Address& a) {
  return a.family() == Address::Family::ipv4 || a.family() == Address::Family::ipv6;
}

void put16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xffu));
  out.push_back(static_cast<char>(v & 0xffu));
}

void put32(std::string& out, std::uint32_t v) {
  put16(out, v >> 16);
  put16(out, v & 0xffffu);
}

void put_tlv(std::string& out, std::uint8_t type, std::string_view value) {
  if (value.size() > 65535)
    refuse("TLV " + std::to_string(type) + " of " + std::to_string(value.size()) +
           " bytes (at most 65535)");
  out.push_back(static_cast<char>(type));
  put16(out, value.size());
  out.append(value);
}

std::string v1(const ProxyHeader& h) {
  if (!h.tlvs.empty() || h.ssl) refuse("a version 1 header carries no TLVs");
  if (h.local) return "PROXY UNKNOWN\r\n";
  if (!is_ip(h.source) || !is_ip(h.destination))
    refuse("version 1 carries IP addresses only, got " + h.source.to_string() + " and " +
           h.destination.to_string());
  const bool v6 = h.source.family() == Address::Family::ipv6 ||
                  h.destination.family() == Address::Family::ipv6;
  return std::string("PROXY ") + (v6 ? "TCP6 " : "TCP4 ") + ip_text(ip_bytes(h.source, v6)) +
         ' ' + ip_text(ip_bytes(h.destination, v6)) + ' ' + std::to_string(h.source.port()) +
         ' ' + std::to_string(h.destination.port()) + "\r\n";
}

std::string unix_block(const Address& a) {
  if (a.host().size() > kUnixPath)
    refuse("Unix path of " + std::to_string(a.host().size()) + " bytes (at most 108)");
  std::string path = a.host();
  path.resize(kUnixPath, '\0');
  return path;
}

std::string v2(const ProxyHeader& h) {
  std::string out(kV2Signature);
  unsigned family = 0;  // AF_UNSPEC
  std::string addresses;
  if (!h.local) {
    const bool unix_src = h.source.family() == Address::Family::unix_socket;
    const bool unix_dst = h.destination.family() == Address::Family::unix_socket;
    if (unix_src && unix_dst) {
      family = 3;
      addresses = unix_block(h.source) + unix_block(h.destination);
    } else if (is_ip(h.source) && is_ip(h.destination)) {
      const bool v6 = h.source.family() == Address::Family::ipv6 ||
                      h.destination.family() == Address::Family::ipv6;
      family = v6 ? 2 : 1;
      addresses = ip_bytes(h.source, v6) + ip_bytes(h.destination, v6);
      put16(addresses, h.source.port());
      put16(addresses, h.destination.port());
    } else {
      refuse("version 2 carries two IP addresses or two Unix paths, got " +
             h.source.to_string() + " and " + h.destination.to_string());
    }
  }
  out.push_back(static_cast<char>(h.local ? 0x20 : 0x21));          // version 2, command
  out.push_back(static_cast<char>((family << 4) | (family ? 1 : 0)));  // family, STREAM
  put16(out, 0);  // the length, filled in below
  out += addresses;
  std::size_t crc_field = 0;
  bool has_ssl = false;
  for (const ProxyTlv& t : h.tlvs) {
    if (t.type == proxy_tlv::unique_id && t.value.size() > kUniqueIdMax)
      refuse("a unique id TLV of " + std::to_string(t.value.size()) + " bytes (at most 128)");
    if (t.type == proxy_tlv::crc32c) {
      if (t.value.size() != 4) refuse("a CRC32c TLV must be 4 bytes");
      // A reader checks every CRC32c TLV against the header with only that one zeroed:
      // two of them cannot both be right.
      if (crc_field != 0) refuse("more than one CRC32c TLV");
      crc_field = out.size() + 3;
    }
    has_ssl = has_ssl || t.type == proxy_tlv::ssl;
    put_tlv(out, t.type, t.value);
  }
  if (h.ssl && !has_ssl) {
    std::string value(1, static_cast<char>(h.ssl->client));
    put32(value, h.ssl->verify);
    for (const ProxyTlv& sub : h.ssl->sub_tlvs) put_tlv(value, sub.type, sub.value);
    put_tlv(out, proxy_tlv::ssl, value);
  }
  if (out.size() > kV2MaxLength)
    refuse("a version 2 header of " + std::to_string(out.size()) + " bytes (at most " +
           std::to_string(kV2MaxLength) + ")");
  const std::size_t length = out.size() - kV2Fixed;
  out[14] = static_cast<char>(length >> 8);
  out[15] = static_cast<char>(length & 0xffu);
  // The CRC32c TLV holds the checksum of the whole header with its own field zeroed.
  if (crc_field != 0) {
    std::memset(out.data() + crc_field, 0, 4);
    const std::uint32_t crc = crc32c_with_zeroed_field(out, crc_field);
    std::string be;
    put32(be, crc);
    out.replace(crc_field, 4, be);
  }
  return out;
}

}  // namespace

std::string format_proxy_header(const ProxyHeader& header) {
  if (header.version == 1) return v1(header);
  if (header.version == 2) return v2(header);
  refuse("version " + std::to_string(header.version) + " (must be 1 or 2)");
}

ProxyHeader make_proxy_header(const Address& client, const Address& server, int version) {
  ProxyHeader h;
  h.version = version;
  h.source = client;
  h.destination = server;
  return h;
}

// The wrapper: writes the header to the real transport, then lets the wrapped protocol
// start. Everything else is ProtocolWrapper's forwarding.
class SendProxyHeaderFactory::Wrapping final : public WrappingFactory {
 public:
  Wrapping(ClientFactory& wrapped, std::string bytes)
      : WrappingFactory(wrapped), bytes_(std::make_shared<const std::string>(std::move(bytes))) {}

  const std::string& bytes() const noexcept { return *bytes_; }

 protected:
  std::unique_ptr<ProtocolWrapper> wrap(std::unique_ptr<Protocol> inner,
                                        const Address& peer) override {
    return std::make_unique<Writer>(*this, std::move(inner), peer, bytes_);
  }

 private:
  class Writer final : public ProtocolWrapper {
   public:
    Writer(WrappingFactory& f, std::unique_ptr<Protocol> inner, Address peer,
           std::shared_ptr<const std::string> bytes)
        : ProtocolWrapper(f, std::move(inner), std::move(peer)), bytes_(std::move(bytes)) {}
    void connection_made() override {
      if (Transport* real = lower_transport()) real->write(*bytes_);
      bytes_.reset();
      ProtocolWrapper::connection_made();
    }

   private:
    std::shared_ptr<const std::string> bytes_;  // shared: the factory may go first
  };
  std::shared_ptr<const std::string> bytes_;
};

SendProxyHeaderFactory::SendProxyHeaderFactory(ClientFactory& wrapped, const ProxyHeader& header)
    : wrapped_(wrapped),
      wrapping_(std::make_unique<Wrapping>(wrapped, format_proxy_header(header))) {}

SendProxyHeaderFactory::~SendProxyHeaderFactory() = default;

const std::string& SendProxyHeaderFactory::header_bytes() const noexcept {
  return wrapping_->bytes();
}

std::unique_ptr<Protocol> SendProxyHeaderFactory::build_protocol(const Address& peer) {
  return wrapping_->build_protocol(peer);
}
void SendProxyHeaderFactory::started_connecting(Connector& connector) {
  wrapped_.started_connecting(connector);
}
void SendProxyHeaderFactory::client_connection_failed(Connector& connector, const Reason& reason) {
  wrapped_.client_connection_failed(connector, reason);
}
void SendProxyHeaderFactory::client_connection_lost(Connector& connector, const Reason& reason) {
  wrapped_.client_connection_lost(connector, reason);
}

}  // namespace torsion
