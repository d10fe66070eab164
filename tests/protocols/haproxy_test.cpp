// HAProxy in front of torsion, and torsion in front of HAProxy, over real sockets on
// 127.0.0.1: haproxy's send-proxy-v2 towards a torsion server behind ProxyProtocolFactory
// (get_peer() and the TLVs carry the real client), and haproxy's accept-proxy reading the
// v1 and v2 headers torsion's SendProxyHeaderFactory writes. Skipped, with the reason
// printed, when haproxy is not installed. The TLS variant (send-proxy-v2-ssl) is in
// haproxy_tls_test.cpp.
#include <doctest/doctest.h>

#include <string>

#include "protocols/proxy_header_writer.hpp"
#include "protocols/proxy_protocol.hpp"
#include "tests/protocols/haproxy.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::Haproxy;
using torsion::test::ProxiedBackend;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::Seen;
using torsion::test::wait_for;

namespace {

// Connects `client` to 127.0.0.1:port through `factory`, sends `text` and waits for its
// echo; returns the client's record.
Record& echo_through(Reactor& reactor, RecordingClientFactory& client, ClientFactory& factory,
                     int port, const std::string& text) {
  const std::size_t n = client.records.size();
  client.setup = [text](Record& r) {
    r.on_made = [text](Record& rr) { rr.transport->write(text); };
  };
  connect_tcp(reactor, "127.0.0.1", port, factory);
  REQUIRE(wait_for(reactor, [&] {
    return client.records.size() > n && client.records[n].received == text;
  }, "the echo through haproxy"));
  return client.records[n];
}

// Closes the client's connection and waits until haproxy has closed the backend's.
void close_both(Reactor& reactor, Record& client, Seen& backend) {
  client.transport->lose_connection();
  REQUIRE(wait_for(reactor, [&] { return client.lost == 1 && backend.lost; }, "both ends closed"));
}

}  // namespace

TEST_CASE("haproxy send-proxy-v2: get_peer() is the real client, the TLVs arrive") {
  if (!test::have_haproxy()) return;
  Reactor reactor;
  reactor.set_handle_signals(false);
  ProxiedBackend backend(reactor);
  Haproxy haproxy(reactor, backend, "",
                  "send-proxy-v2 proxy-v2-options unique-id,crc32c");
  INFO(haproxy.errors());

  RecordingClientFactory client;
  Record& mine = echo_through(reactor, client, client, haproxy.port(), "through haproxy");
  const auto clients = backend.clients();
  REQUIRE(clients.size() == 1);
  Seen& seen = *clients[0];
  CHECK(seen.received == "through haproxy");
  CHECK(seen.header.version == 2);
  // The client as haproxy saw it: this connection's own local address and port.
  CHECK(seen.peer == mine.transport->get_host());
  CHECK(seen.header.source == mine.transport->get_host());
  // And the address the client connected to: haproxy's frontend.
  CHECK(seen.host == Address::ip("127.0.0.1", static_cast<std::uint16_t>(haproxy.port())));
  // proxy-v2-options: a unique id and a CRC32c the parser verified (or it would have
  // refused the connection).
  CHECK(seen.header.unique_id() == seen.peer.to_string());  // unique-id-format %ci:%cp
  CHECK(seen.header.find_tlv(proxy_tlv::crc32c) != nullptr);
  CHECK_FALSE(seen.header.ssl);  // a plain TCP client
  close_both(reactor, mine, seen);
  CHECK(backend.proxy.rejected_count() == 0);
  haproxy.stop();
}

TEST_CASE("haproxy accept-proxy reads the v1 and v2 headers torsion clients write") {
  // torsion client --(SendProxyHeaderFactory: "the client is 192.0.2.7:4242")-->
  // haproxy accept-proxy --(send-proxy-v2)--> torsion backend: the backend sees the
  // client the header named, so haproxy parsed our header and believed it.
  if (!test::have_haproxy()) return;
  Reactor reactor;
  reactor.set_handle_signals(false);
  ProxiedBackend backend(reactor);
  Haproxy haproxy(reactor, backend, "accept-proxy", "send-proxy-v2");
  INFO(haproxy.errors());

  struct Case {
    int version;
    Address client, server;
  };
  for (const Case& c : {Case{1, Address::ip("192.0.2.7", 4242), Address::ip("198.51.100.1", 80)},
                        Case{2, Address::ip("192.0.2.8", 4343), Address::ip("198.51.100.2", 443)},
                        Case{1, Address::ip("2001:db8::7", 5555), Address::ip("2001:db8::1", 8080)},
                        Case{2, Address::ip("2001:db8::8", 6666), Address::ip("2001:db8::2", 8443)}}) {
    CAPTURE(c.version);
    CAPTURE(c.client.to_string());
    RecordingClientFactory client;
    SendProxyHeaderFactory sender(client, make_proxy_header(c.client, c.server, c.version));
    const std::size_t before = backend.clients().size();
    Record& mine = echo_through(reactor, client, sender, haproxy.port(), "v" + std::to_string(c.version));
    const auto clients = backend.clients();
    REQUIRE(clients.size() == before + 1);
    Seen& seen = *clients.back();
    CHECK(seen.peer == c.client);
    CHECK(seen.host == c.server);
    CHECK(seen.received == "v" + std::to_string(c.version));  // the header did not leak into the data
    close_both(reactor, mine, seen);
  }

  // A v2 header with TLVs of ours: haproxy accepts it (it ignores what it does not use).
  ProxyHeader rich = make_proxy_header(Address::ip("192.0.2.9", 1000), Address::ip("192.0.2.10", 2000));
  rich.tlvs = {{proxy_tlv::authority, "shop.example"}, {proxy_tlv::noop, "pad"}, {proxy_tlv::crc32c, "...."}};
  RecordingClientFactory client;
  SendProxyHeaderFactory sender(client, rich);
  Record& mine = echo_through(reactor, client, sender, haproxy.port(), "tlvs");
  Seen& seen = *backend.clients().back();
  CHECK(seen.peer == Address::ip("192.0.2.9", 1000));
  close_both(reactor, mine, seen);

  // Without a header, haproxy's accept-proxy refuses the connection: nothing reaches the
  // backend, and the client is closed.
  const std::size_t before = backend.seen.size();
  RecordingClientFactory bare;
  bare.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("GET / HTTP/1.0\r\n\r\n"); }; };
  connect_tcp(reactor, "127.0.0.1", haproxy.port(), bare);
  REQUIRE(wait_for(reactor, [&] { return !bare.records.empty() && bare.records[0].lost == 1; },
                   "haproxy closing a connection without a header"));
  CHECK(bare.records[0].received.empty());
  CHECK(backend.seen.size() == before);
  CHECK(backend.proxy.rejected_count() == 0);
  haproxy.stop();
}
