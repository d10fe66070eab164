// Back-pressure by default over TLS, as over TCP (flow_control_test.cpp): an echo server
// whose peer sends and never reads stops reading once its queue passes the high mark, and
// set_pause_reading_when_full / pauses_reading_when_full pass through the TLS layer to the
// stream engine beneath. Over listen_ssl, start_tls on a TCP server, and a ProtocolWrapper
// above listen_ssl; the peer is connect_ssl with its reading paused.

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/transport.hpp"
#include "protocols/wrapping.hpp"
#include "tests/support/flood.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/tls_certs.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

using namespace torsion;

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

// Starts the flood fixture (tests/support/flood.hpp) with a TLS server of `kind` and a
// connect_ssl client. (Unlike over TCP, the server may be handed data above the high mark:
// one read of the engine holds several records, and each is delivered on its own; the hold
// comes before the next read, as over TCP.)
struct TlsFlood {
  test::TestPki pki;
  TlsServerContext sctx{test::server_options(pki)};
  TlsClientContext cctx{test::client_options(pki)};
  test::Flood f;
  // start_tls: TCP, and the server switches to TLS first thing in connection_made.
  FunctionFactory<Factory> start_tls_factory{[this](const Address& peer) {
    return with_start_tls(f.server.build_protocol(peer));
  }};
  WrappingFactory wrapping{f.server};

  TlsFlood(Server kind, bool pause_reading_when_full)
      : f(pause_reading_when_full, [this, kind](Transport& t) {
          if (kind == Server::start_tls) start_tls(t, sctx);
        }) {
    f.start(
        [&]() -> std::shared_ptr<ListeningPort> {
          switch (kind) {
            case Server::listen_ssl:
              return listen_ssl(f.reactor, 0, f.server, sctx, "127.0.0.1");
            case Server::start_tls:
              return listen_tcp(f.reactor, 0, start_tls_factory, test::loopback());
            case Server::wrapped:
              return listen_ssl(f.reactor, 0, wrapping, sctx, "127.0.0.1");
          }
          return nullptr;
        },
        [&](int port) { return connect_ssl(f.reactor, "127.0.0.1", port, f.client, cctx); });
  }
};

}  // namespace

TEST_CASE("tls back-pressure by default: an echo to a peer that never reads stops reading") {
  for (Server kind : {Server::listen_ssl, Server::start_tls, Server::wrapped}) {
    const std::string server_kind = name_of(kind);
    CAPTURE(server_kind);
    TlsFlood t(kind, /*pause_reading_when_full=*/true);
    const std::string payload = t.f.flood_until_held();
    t.f.finish(payload);
    // The queue passed the mark by at most what one read held: 128 KiB of ciphertext, and
    // the rest of a record begun in the read before.
    CHECK(t.f.max_buffer <= test::Flood::kHigh + 128 * 1024 + 16 * 1024);
  }
}

TEST_CASE("tls set_pause_reading_when_full(false): reading goes on and the queue grows") {
  for (Server kind : {Server::listen_ssl, Server::start_tls, Server::wrapped}) {
    const std::string server_kind = name_of(kind);
    CAPTURE(server_kind);
    TlsFlood t(kind, /*pause_reading_when_full=*/false);
    t.f.finish(t.f.flood_past_a_megabyte());
  }
}
