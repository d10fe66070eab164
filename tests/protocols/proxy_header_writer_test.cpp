// format_proxy_header and SendProxyHeaderFactory: what the writer produces is read back
// by parse_proxy_header as the same header (byte for byte where the specification fixes
// the bytes), and a torsion client's connection starts with it. HAProxy's accept-proxy
// reading these bytes is in haproxy_test.cpp.
#include "protocols/proxy_header_writer.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using Status = ProxyParseResult::Status;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

// Parses `bytes`, REQUIREs one complete header that uses all of them.
ProxyHeader read_back(const std::string& bytes) {
  const ProxyParseResult r = parse_proxy_header(bytes);
  const std::string why = r.error ? r.error->message() : "no error";
  INFO(why);
  REQUIRE(r.status == Status::complete);
  REQUIRE(r.consumed == bytes.size());
  return r.header;
}

ProxyHeader header(int version, Address source, Address destination) {
  return make_proxy_header(std::move(source), std::move(destination), version);
}

}  // namespace

TEST_CASE("format_proxy_header: v1 lines as the specification writes them") {
  CHECK(format_proxy_header(header(1, Address::ip("192.0.2.1", 56324),
                                   Address::ip("198.51.100.7", 443))) ==
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
  CHECK(format_proxy_header(header(1, Address::ip("2001:db8::7", 40000),
                                   Address::ip("2001:db8::1", 8080))) ==
        "PROXY TCP6 2001:db8::7 2001:db8::1 40000 8080\r\n");
  // One IPv6 address makes the line TCP6, the IPv4 one mapped (as HAProxy writes it).
  CHECK(format_proxy_header(header(1, Address::ip("192.0.2.1", 1), Address::ip("::1", 2))) ==
        "PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n");
  // Not canonical text in, canonical text out (the parser accepts only that).
  CHECK(format_proxy_header(header(1, Address::ip("2001:DB8:0:0::7", 0), Address::ip("::1", 65535))) ==
        "PROXY TCP6 2001:db8::7 ::1 0 65535\r\n");
  ProxyHeader unknown;
  unknown.version = 1;
  unknown.local = true;
  CHECK(format_proxy_header(unknown) == "PROXY UNKNOWN\r\n");
  CHECK(read_back("PROXY UNKNOWN\r\n").local);
  // The longest line fits the parser's limit of 107 bytes.
  const std::string longest = format_proxy_header(
      header(1, Address::ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535),
             Address::ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)));
  CHECK(longest.size() == 104);
  CHECK(read_back(longest).source == Address::ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535));
}

TEST_CASE("format_proxy_header: v2 fixed part, families and the LOCAL command") {
  const std::string tcp4 =
      format_proxy_header(header(2, Address::ip("192.0.2.1", 56324), Address::ip("198.51.100.7", 443)));
  CHECK(tcp4 == kSig + std::string("\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc\x04\x01\xbb", 16));
  const ProxyHeader h4 = read_back(tcp4);
  CHECK(h4.version == 2);
  CHECK_FALSE(h4.local);
  CHECK(h4.source == Address::ip("192.0.2.1", 56324));
  CHECK(h4.destination == Address::ip("198.51.100.7", 443));

  const std::string tcp6 =
      format_proxy_header(header(2, Address::ip("2001:db8::7", 40000), Address::ip("192.0.2.9", 80)));
  CHECK(tcp6.size() == 16 + 36);
  CHECK(tcp6[13] == '\x21');
  const ProxyHeader h6 = read_back(tcp6);
  CHECK(h6.source == Address::ip("2001:db8::7", 40000));
  CHECK(h6.destination == Address::ip("::ffff:192.0.2.9", 80));

  const std::string unix_header = format_proxy_header(
      header(2, Address::unix_socket("/run/client.sock"), Address::unix_socket("/run/app.sock")));
  CHECK(unix_header.size() == 16 + 216);
  CHECK(unix_header[13] == '\x31');
  const ProxyHeader hu = read_back(unix_header);
  CHECK(hu.source == Address::unix_socket("/run/client.sock"));
  CHECK(hu.destination == Address::unix_socket("/run/app.sock"));
  const std::string full_path(108, 'p');  // exactly sun_path's size: no terminator needed
  CHECK(read_back(format_proxy_header(header(2, Address::unix_socket(full_path),
                                             Address::unix_socket("/x"))))
            .source == Address::unix_socket(full_path));

  ProxyHeader local;
  local.version = 2;
  local.local = true;
  CHECK(format_proxy_header(local) == kSig + std::string("\x20\x00\x00\x00", 4));
  CHECK(read_back(format_proxy_header(local)).local);
}

TEST_CASE("format_proxy_header: v2 TLVs, the SSL TLV from ssl, and a filled-in CRC32c") {
  ProxyHeader h = header(2, Address::ip("192.0.2.1", 1234), Address::ip("192.0.2.2", 443));
  h.tlvs = {{proxy_tlv::alpn, "h2"},
            {proxy_tlv::authority, "example.com"},
            {proxy_tlv::unique_id, std::string(128, 'u')},
            {proxy_tlv::noop, std::string(3, '\0')},
            {proxy_tlv::crc32c, "????"},
            {0xe0, std::string("\0\xff", 2)}};  // a custom type, passed through as bytes
  ProxySslInfo ssl;
  ssl.client = 0x05;
  ssl.verify = 0x01020304;
  ssl.sub_tlvs = {{proxy_tlv::ssl_version, "TLSv1.3"}, {proxy_tlv::ssl_cn, "alice"},
                  {proxy_tlv::ssl_cipher, "TLS_AES_128_GCM_SHA256"}};
  h.ssl = ssl;
  const std::string bytes = format_proxy_header(h);
  const ProxyHeader back = read_back(bytes);  // the parser verified the CRC32c
  REQUIRE(back.tlvs.size() == h.tlvs.size() + 1);
  for (std::size_t i = 0; i < h.tlvs.size(); ++i) {
    CAPTURE(i);
    CHECK(back.tlvs[i].type == h.tlvs[i].type);
    if (h.tlvs[i].type != proxy_tlv::crc32c) CHECK(back.tlvs[i].value == h.tlvs[i].value);
  }
  CHECK(back.tlvs.back().type == proxy_tlv::ssl);
  CHECK(back.alpn() == "h2");
  CHECK(back.authority() == "example.com");
  REQUIRE(back.ssl);
  CHECK(back.ssl->client == 0x05);
  CHECK(back.ssl->verify == 0x01020304);
  CHECK(back.ssl->version() == "TLSv1.3");
  CHECK(back.ssl->common_name() == "alice");
  CHECK(back.ssl->cipher() == "TLS_AES_128_GCM_SHA256");
  CHECK(back.ssl->client_ssl());

  // What was read back writes the same bytes again: the SSL TLV comes from `tlvs`, where
  // the parser left its raw bytes, not a second time from `ssl`.
  CHECK(format_proxy_header(back) == bytes);
  // A byte flipped after the checksum was written: the reader refuses it.
  std::string corrupted = bytes;
  corrupted[16 + 12 + 5] ^= 0x20;  // inside the ALPN value
  CHECK(parse_proxy_header(corrupted).status == Status::invalid);
}

TEST_CASE("format_proxy_header: every header it cannot write is an invalid_argument") {
  auto refused = [](const ProxyHeader& h) {
    CHECK_THROWS_AS((void)format_proxy_header(h), std::invalid_argument);
  };
  refused(header(3, Address::ip("192.0.2.1", 1), Address::ip("192.0.2.2", 2)));
  refused(header(0, Address::ip("192.0.2.1", 1), Address::ip("192.0.2.2", 2)));
  refused(header(1, Address::ip("example.com", 1), Address::ip("192.0.2.2", 2)));  // not numeric
  refused(header(2, Address::ip("2001:db8::zz", 1), Address::ip("::1", 2)));
  refused(header(1, Address::unix_socket("/a"), Address::unix_socket("/b")));
  refused(header(1, Address(), Address::ip("192.0.2.2", 2)));
  refused(header(2, Address::unix_socket("/a"), Address::ip("192.0.2.2", 2)));
  refused(header(2, Address(), Address()));
  refused(header(2, Address::unix_socket(std::string(109, 'p')), Address::unix_socket("/b")));
  ProxyHeader v1_tlv = header(1, Address::ip("192.0.2.1", 1), Address::ip("192.0.2.2", 2));
  v1_tlv.tlvs = {{proxy_tlv::alpn, "h2"}};
  refused(v1_tlv);
  v1_tlv.tlvs.clear();
  v1_tlv.ssl = ProxySslInfo{};
  refused(v1_tlv);
  ProxyHeader h = header(2, Address::ip("192.0.2.1", 1), Address::ip("192.0.2.2", 2));
  h.tlvs = {{proxy_tlv::unique_id, std::string(129, 'u')}};
  refused(h);
  h.tlvs = {{proxy_tlv::crc32c, "abc"}};
  refused(h);
  h.tlvs = {{proxy_tlv::crc32c, "abcd"}, {proxy_tlv::crc32c, "abcd"}};
  refused(h);
  h.tlvs = {{0xe0, std::string(65536, 'x')}};
  refused(h);
  // Each TLV fits, the header does not: 16 + 12 + 2 * (3 + 32766) = 65566 > 16 + 65535.
  h.tlvs = {{0xe0, std::string(32766, 'x')}, {0xe1, std::string(32766, 'y')}};
  refused(h);
  h.tlvs = {{0xe0, std::string(65535 - 12 - 3, 'x')}};  // exactly the largest header
  const std::string largest = format_proxy_header(h);
  CHECK(largest.size() == 16 + 65535);
  ProxyOptions roomy;
  roomy.max_v2_length = 16 + 65535;
  CHECK(parse_proxy_header(largest, roomy).status == Status::complete);
}

TEST_CASE("SendProxyHeaderFactory: the header precedes what the protocol writes") {
  Reactor reactor;
  // The backend: torsion behind ProxyProtocolFactory, echoing, remembering what it saw.
  RecordingFactory inner;
  Address seen_peer, seen_host;
  std::optional<ProxyHeader> seen;
  inner.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      seen_peer = rr.transport->get_peer();
      seen_host = rr.transport->get_host();
      if (const ProxyHeader* h = proxy_header(*rr.transport)) seen = *h;
    };
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
  };
  ProxyProtocolFactory backend(inner);
  auto port = listen_tcp(reactor, 0, backend, loopback());

  for (int version : {1, 2}) {
    CAPTURE(version);
    seen.reset();
    RecordingClientFactory client;
    client.setup = [](Record& r) {
      r.on_made = [](Record& rr) { rr.transport->write("hello"); };
    };
    ProxyHeader h = header(version, Address::ip("203.0.113.9", 5555), Address::ip("198.51.100.1", 443));
    if (version == 2) h.tlvs = {{proxy_tlv::authority, "shop.example"}};
    SendProxyHeaderFactory sender(client, h);
    CHECK(sender.header_bytes() == format_proxy_header(h));
    connect_tcp(reactor, "127.0.0.1", port->port(), sender);
    REQUIRE(wait_for(reactor, [&] {
      return !client.records.empty() && client.records[0].received == "hello";
    }, "the echo behind the header"));
    CHECK(client.started == 1);  // the connector events reach the wrapped factory
    REQUIRE(seen);
    CHECK(seen->version == version);
    CHECK(seen_peer == Address::ip("203.0.113.9", 5555));
    CHECK(seen_host == Address::ip("198.51.100.1", 443));
    if (version == 2) CHECK(seen->authority() == "shop.example");
    // The client's own transport is the real connection's.
    CHECK(client.records[0].transport->get_peer() == Address::ip("127.0.0.1", static_cast<std::uint16_t>(port->port())));
    client.records[0].transport->lose_connection();
    REQUIRE(wait_for(reactor, [&] { return client.records[0].lost == 1; }, "the close"));
    CHECK(client.records[0].reason->clean());
  }
  CHECK(backend.rejected_count() == 0);
  port->stop_listening();
  REQUIRE(wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "all closed"));
}

TEST_CASE("SendProxyHeaderFactory: a header that cannot be written is refused at once") {
  RecordingClientFactory client;
  CHECK_THROWS_AS(SendProxyHeaderFactory(client, header(1, Address::unix_socket("/a"),
                                                        Address::unix_socket("/b"))),
                  std::invalid_argument);
}

TEST_CASE("SendProxyHeaderFactory: a refusal by the wrapped factory refuses the connection") {
  Reactor reactor;
  RecordingFactory backend;
  auto port = listen_tcp(reactor, 0, backend, loopback());
  struct Refusing : ClientFactory {
    std::optional<Reason> failed;
    std::unique_ptr<Protocol> build_protocol(const Address&) override { return nullptr; }
    void client_connection_failed(Connector&, const Reason& r) override { failed = r; }
  } refusing;
  SendProxyHeaderFactory sender(refusing,
                                header(2, Address::ip("192.0.2.1", 1), Address::ip("192.0.2.2", 2)));
  connect_tcp(reactor, "127.0.0.1", port->port(), sender);
  REQUIRE(wait_for(reactor, [&] { return refusing.failed.has_value(); }, "the refusal"));
  CHECK(refusing.failed->kind() == error::refused_by_factory);
  port->stop_listening();
  REQUIRE(wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "all closed"));
}
