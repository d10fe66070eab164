// Back-pressure by default over TLS, as over TCP (flow_control_test.cpp): an echo server
// whose peer sends and never reads stops reading once its queue passes the high mark, and
// set_pause_reading_when_full / pauses_reading_when_full pass through the TLS layer to the
// stream engine beneath. Over listen_ssl, start_tls on a TCP server, and a ProtocolWrapper
// above listen_ssl; the peer is connect_ssl with its reading paused.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/transport.hpp"
#include "protocols/wrapping.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/pattern.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/socket_probe.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::pattern_stream;
using torsion::test::Record;
using torsion::test::Recording;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

enum class Server { listen_ssl, start_tls, wrapped };

const char* name_of(Server kind) {
  switch (kind) {
    case Server::listen_ssl:
      return "listen_ssl";
    case Server::start_tls:
      return "start_tls";
    case Server::wrapped:
      return "ProtocolWrapper over listen_ssl";
  }
  return "?";
}

// A TLS server that echoes what it reads with write buffer marks of 4096/1024, and a TLS
// client that never reads (reading paused) until the test says so. Keeps the largest
// buffer the server had. (Unlike over TCP, the server may be handed data above the high
// mark: one read of the engine holds several records, and each is delivered on its own;
// the hold comes before the next read, as over TCP.)
struct TlsFlood {
  static constexpr std::size_t kHigh = 4096, kLow = 1024;
  test::TestPki pki;
  Reactor reactor;
  TlsServerContext sctx{test::server_options(pki)};
  TlsClientContext cctx{test::client_options(pki)};
  RecordingFactory server;
  // start_tls: TCP, and the server switches to TLS first thing in connection_made.
  FunctionFactory<Factory> start_tls_factory{[this](const Address& peer) {
    return with_start_tls(server.build_protocol(peer));
  }};
  WrappingFactory wrapping{server};
  RecordingClientFactory client;
  std::shared_ptr<ListeningPort> port;
  std::shared_ptr<Connector> connector;
  std::size_t max_buffer = 0;

  TlsFlood(Server kind, bool pause_reading_when_full) {
    server.setup = [this, kind, pause_reading_when_full](Record& r) {
      r.on_made = [this, kind, pause_reading_when_full](Record& rr) {
        if (kind == Server::start_tls) start_tls(*rr.transport, sctx);
        rr.transport->set_write_buffer_limits(kHigh, kLow);
        if (!pause_reading_when_full) rr.transport->set_pause_reading_when_full(false);
      };
      r.on_data = [this](Record& rr, std::string_view data) {
        rr.transport->write(data);
        max_buffer = std::max(max_buffer, rr.transport->buffer_size());
      };
    };
    switch (kind) {
      case Server::listen_ssl:
        port = listen_ssl(reactor, 0, server, sctx, "127.0.0.1");
        break;
      case Server::start_tls:
        port = listen_tcp(reactor, 0, start_tls_factory, test::loopback());
        break;
      case Server::wrapped:
        port = listen_ssl(reactor, 0, wrapping, sctx, "127.0.0.1");
        break;
    }
    client.setup = [](Record& r) {
      r.on_made = [](Record& rr) { rr.transport->pause_producing(); };
    };
    connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, cctx);
    wait_for(reactor, [&] { return client.records.size() == 1 && server.records.size() == 1; },
             "the connection");
  }
  Record& srv() { return server.records[0]; }
  Record& cli() { return client.records[0]; }

  // The client reads again and everything comes back, in order; then both sides close.
  void finish(const std::string& payload) {
    cli().transport->resume_producing();
    wait_for(reactor, [&] { return cli().received.size() == payload.size(); },
             "the whole echo");
    CHECK(pattern_stream().matches(0, cli().received));
    cli().transport->lose_connection();
    wait_for(reactor, [&] { return srv().done() && cli().done(); }, "both sides to close");
    port->stop_listening();
    wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection");
  }
};

}  // namespace

TEST_CASE("tls back-pressure by default: an echo to a peer that never reads stops reading") {
  for (Server kind : {Server::listen_ssl, Server::start_tls, Server::wrapped}) {
    const std::string server_kind = name_of(kind);
    CAPTURE(server_kind);
    TlsFlood f(kind, /*pause_reading_when_full=*/true);
    wait_for(f.reactor, [&] { return f.srv().made == 1; }, "the server's connection");
    CHECK(f.srv().transport->pauses_reading_when_full());
    // More than the kernel's buffers of both sides hold.
    const std::string payload = pattern_stream().bytes(32u << 20);
    f.cli().transport->write(payload);
    // The server echoes until its queue passes the high mark, then stops reading: what
    // the client sent waits in the server's kernel and the rest in the client's queue.
    wait_for(
        f.reactor,
        [&] {
          return f.srv().transport->buffer_size() > TlsFlood::kHigh &&
                 test::unread_bytes(f.srv().transport->native_handle()) > 0 &&
                 f.cli().transport->buffer_size() > 0;
        },
        "the server to stop reading");
    CHECK(f.srv().received.size() < payload.size());
    f.finish(payload);
    // The queue passed the mark by at most what one read held: 128 KiB of ciphertext, and
    // the rest of a record begun in the read before.
    CHECK(f.max_buffer <= TlsFlood::kHigh + 128 * 1024 + 16 * 1024);
  }
}

TEST_CASE("tls set_pause_reading_when_full(false): reading goes on and the queue grows") {
  for (Server kind : {Server::listen_ssl, Server::start_tls, Server::wrapped}) {
    const std::string server_kind = name_of(kind);
    CAPTURE(server_kind);
    TlsFlood f(kind, /*pause_reading_when_full=*/false);
    wait_for(f.reactor, [&] { return f.srv().made == 1; }, "the server's connection");
    CHECK_FALSE(f.srv().transport->pauses_reading_when_full());
    const std::string payload = pattern_stream().bytes(32u << 20);
    f.cli().transport->write(payload);
    wait_for(
        f.reactor, [&] { return f.srv().transport->buffer_size() > (1u << 20); },
        "the server to queue a megabyte");
    CHECK(f.srv().received.size() > (1u << 20));
    f.finish(payload);
  }
}
