#include "transports/tls.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/openssl_peers.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::OpenSslClient;
using torsion::test::OpenSslServer;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::reverse_ping;
using torsion::test::s_client_command;
using torsion::test::s_server_command;
using torsion::test::TestPki;
using torsion::test::wait_for;

namespace {

TlsServerOptions server_options(const TestPki& pki) {
  TlsServerOptions o;
  o.certificate_chain_file = pki.cert_file;
  o.private_key_file = pki.key_file;
  return o;
}

TlsClientOptions client_options(const TestPki& pki) {
  TlsClientOptions o;
  o.ca_file = pki.ca_file;
  return o;
}

void echo_setup(Record& r) {
  r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
}

// The setup most cases share: a reactor, a TLS server on 127.0.0.1 that records its
// connections, and a recording client. A case adjusts `sopt`, `copt` and the factories'
// setup, then calls listen() and connect() (or start() for both). Members are destroyed in
// the reverse order of their declaration: the connector and client first, the reactor and
// the certificates last.
struct TlsFixture {
  TestPki pki;
  Reactor reactor;
  TlsServerOptions sopt = server_options(pki);
  TlsClientOptions copt = client_options(pki);
  std::optional<TlsServerContext> sctx;
  RecordingFactory server;
  std::shared_ptr<ListeningPort> port;
  std::optional<TlsClientContext> cctx;
  RecordingClientFactory client;
  std::shared_ptr<Connector> connector;

  // Makes the server context from `sopt` and listens on 127.0.0.1, port 0.
  void listen() {
    sctx.emplace(sopt);
    port = listen_ssl(reactor, 0, server, *sctx, "127.0.0.1");
  }
  // Makes the client context from `copt` and connects `client` to the port.
  void connect() {
    cctx.emplace(copt);
    connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, *cctx);
  }
  void start() {
    listen();
    connect();
  }
  // The client's connection is lost and the server's first one has ended.
  bool both_closed() const {
    return client.lost == 1 && !server.records.empty() && server.records[0].done();
  }
  // Stops listening and checks that no connection is left.
  void stop() {
    port->stop_listening();
    CHECK(reactor.connection_count() == 0);
  }
};

// Connects as `f.copt` to a server configured as `f.sopt`, and returns the failure.
Reason handshake_failure(TlsFixture& f) {
  f.start();
  wait_for(f.reactor, [&] { return f.client.failed == 1; }, "the handshake to fail");
  CHECK(f.client.records.empty());
  CHECK(f.server.records.empty());  // neither side built a protocol
  f.port->stop_listening();
  f.reactor.run_until([&] { return f.reactor.connection_count() == 0; }, 5);
  CHECK(f.reactor.connection_count() == 0);
  return f.client.failure.value_or(Reason());
}

}  // namespace

TEST_CASE("tls echo round trip with verification, SNI and ALPN") {
  TlsFixture f;
  f.sopt.alpn = {"h2", "http/1.1"};
  std::optional<TlsInfo> server_info;
  f.server.setup = [&](Record& r) {
    echo_setup(r);
    r.on_made = [&](Record& rr) { server_info = tls_info(*rr.transport); };
  };
  f.copt.alpn = {"http/1.1", "h2"};
  f.copt.server_name = "localhost";
  const std::string message(100 * 1024, 's');
  std::optional<TlsInfo> client_info;
  f.client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      client_info = tls_info(*rr.transport);
      rr.transport->write(message);
    };
    r.on_data = [&](Record& rr, std::string_view) {
      if (rr.received.size() == message.size()) rr.transport->lose_connection();
    };
  };
  f.start();
  wait_for(f.reactor, [&] { return f.both_closed(); }, "the echo and both closes");
  REQUIRE(f.client.records.size() == 1);
  CHECK(f.client.records[0].received == message);
  CHECK(f.client.records[0].reason->clean());
  CHECK(f.server.records[0].reason->clean());
  CHECK(f.server.records[0].eofs == 1);  // the client's close_notify
  REQUIRE(client_info);
  REQUIRE(server_info);
  CHECK(client_info->version == "TLSv1.3");
  CHECK(client_info->alpn == "h2");  // the server's preference wins
  CHECK(server_info->alpn == "h2");
  CHECK(server_info->server_name == "localhost");
  CHECK(client_info->peer_subject.find("CN=localhost") != std::string::npos);
  f.stop();
}

TEST_CASE("tls handshake failures say why") {
  TlsFixture f;
  SUBCASE("unknown CA") {
    f.sopt.certificate_chain_file = f.pki.stranger_cert_file;
    f.sopt.private_key_file = f.pki.stranger_key_file;
    const Reason r = handshake_failure(f);
    CHECK(r.is(error::tls_failed));
    CHECK(r.message().find("unable to get local issuer certificate") != std::string::npos);
  }
  SUBCASE("name mismatch") {
    f.copt.server_name = "other.example";
    const Reason r = handshake_failure(f);
    CHECK(r.is(error::tls_failed));
    CHECK(r.message().find("hostname mismatch") != std::string::npos);
  }
  SUBCASE("expired") {
    f.sopt.certificate_chain_file = f.pki.expired_cert_file;
    f.sopt.private_key_file = f.pki.expired_key_file;
    const Reason r = handshake_failure(f);
    CHECK(r.is(error::tls_failed));
    CHECK(r.message().find("certificate has expired") != std::string::npos);
  }
  SUBCASE("verification off only when asked") {
    f.sopt.certificate_chain_file = f.pki.stranger_cert_file;
    f.sopt.private_key_file = f.pki.stranger_key_file;
    f.copt = TlsClientOptions{};  // no CA at all
    f.copt.verify_peer = false;
    f.client.setup = [](Record& r) {
      r.on_made = [](Record& rr) { rr.transport->lose_connection(); };
    };
    f.start();
    wait_for(f.reactor, [&] { return f.client.lost == 1; }, "the insecure connection");
    CHECK(f.client.failed == 0);
    f.port->stop_listening();
  }
}

TEST_CASE("tls against a peer that does not speak TLS") {
  Reactor reactor;
  RecordingFactory plain;
  plain.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("220 plain text service, not TLS\r\n"); };
  };
  auto port = listen_tcp(reactor, 0, plain, loopback());
  TestPki pki;
  TlsClientContext cctx(client_options(pki));
  RecordingClientFactory client;
  auto connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, cctx);
  wait_for(reactor, [&] { return client.failed == 1; }, "the failure");
  CHECK(client.failure->is(error::tls_failed));
  CHECK(client.failure->message().find("wrong version number") != std::string::npos);
  port->stop_listening();
}

TEST_CASE("tls small writes are coalesced into few records") {
  TlsFixture f;
  int deliveries = 0;
  f.server.setup = [&](Record& r) {
    r.on_data = [&](Record& rr, std::string_view) {
      ++deliveries;
      if (rr.received.size() == 1000) rr.transport->lose_connection();
    };
  };
  f.client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      for (int i = 0; i < 100; ++i) rr.transport->write("0123456789");
    };
  };
  f.start();
  wait_for(f.reactor, [&] { return f.client.lost == 1; }, "the close");
  CHECK(f.server.records[0].received.size() == 1000);
  CHECK(deliveries == 1);  // one record: one read on the server
  f.port->stop_listening();
}

TEST_CASE("tls close_notify wait is bounded and a paused transport still hears the end") {
  TlsFixture f;
  // The server stops reading at once, so it never answers the client's close_notify.
  f.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->pause_producing(); };
  };
  f.copt.close_timeout = 0.2;
  f.client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("bye");
      rr.transport->lose_connection();
    };
  };
  f.start();
  const double start = f.reactor.seconds();
  wait_for(f.reactor, [&] { return f.client.lost == 1; }, "the bounded close");
  CHECK(f.reactor.seconds() - start < 5);
  CHECK(f.client.records[0].reason->clean());
  REQUIRE(f.server.records.size() == 1);
  CHECK(f.server.records[0].lost == 0);  // paused: has not read anything yet
  f.server.records[0].transport->abort_connection();
  wait_for(f.reactor, [&] { return f.server.records[0].done(); },
           "the paused server's connection_lost");
  CHECK(f.server.records[0].reason->is(error::connection_aborted));
  f.stop();
}

TEST_CASE("tls interop: openssl s_client talks to listen_ssl") {
  TlsFixture f;
  f.server.setup = echo_setup;
  f.listen();
  OpenSslClient s_client("ping from s_client");
  auto p = spawn_process(f.reactor, s_client, s_client_command(f.pki, f.port->port()));
  p->write("ping from s_client\n");
  wait_for(f.reactor, [&] { return s_client.status.has_value(); }, "s_client to finish");
  CHECK(s_client.out == "ping from s_client\n");
  CHECK(s_client.status->success());
  REQUIRE(f.server.records.size() == 1);
  wait_for(f.reactor, [&] { return f.server.records[0].done(); }, "the server side to close");
  f.port->stop_listening();
}

TEST_CASE("tls interop: connect_ssl talks to openssl s_server") {
  TestPki pki;
  Reactor reactor;
  OpenSslServer s_server;
  auto p = spawn_process(reactor, s_server, s_server_command(pki));
  wait_for(reactor, [&] { return s_server.port != 0; }, "s_server's port");
  TlsClientOptions copt = client_options(pki);
  copt.server_name = "localhost";
  TlsClientContext cctx(copt);
  RecordingClientFactory client;
  reverse_ping(client);
  auto connector = connect_ssl(reactor, "127.0.0.1", s_server.port, client, cctx);
  wait_for(reactor, [&] { return client.lost == 1 || client.failed == 1; }, "the exchange");
  CHECK(client.failed == 0);
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received.find("noisrot") != std::string::npos);
  p->signal_process(SIGTERM);
  wait_for(reactor, [&] { return s_server.status.has_value(); }, "s_server to end");
}

TEST_CASE("tls bad configuration throws") {
  TlsServerOptions missing;
  missing.certificate_chain_file = "/nonexistent/cert.pem";
  missing.private_key_file = "/nonexistent/key.pem";
  CHECK_THROWS_AS(TlsServerContext{missing}, std::invalid_argument);
  TestPki pki;
  TlsServerOptions mismatched = server_options(pki);
  mismatched.private_key_file = pki.expired_key_file;
  CHECK_THROWS_AS(TlsServerContext{mismatched}, std::invalid_argument);
  TlsClientOptions bad_ca;
  bad_ca.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_AS(TlsClientContext{bad_ca}, std::invalid_argument);
  TlsClientOptions bad_alpn;
  bad_alpn.alpn = {""};
  CHECK_THROWS_AS(TlsClientContext{bad_alpn}, std::invalid_argument);

  TlsServerOptions no_ca = server_options(pki);
  no_ca.verify_client = VerifyClient::required;
  CHECK_THROWS_WITH_AS(TlsServerContext{no_ca}, doctest::Contains("needs ca_file"),
                       std::invalid_argument);
  TlsServerOptions unused_ca = server_options(pki);
  unused_ca.ca_file = pki.ca_file;
  CHECK_THROWS_WITH_AS(TlsServerContext{unused_ca}, doctest::Contains("verify_client is none"),
                       std::invalid_argument);
  TlsServerOptions missing_ca = server_options(pki);
  missing_ca.verify_client = VerifyClient::optional;
  missing_ca.ca_directory = "/nonexistent";
  CHECK_THROWS_WITH_AS(TlsServerContext{missing_ca},
                       doctest::Contains("TlsServerContext: CA directory '/nonexistent'"),
                       std::invalid_argument);
}

TEST_CASE("tls server drops a client that never starts the handshake") {
  TlsFixture f;
  f.sopt.handshake_timeout = 0.2;
  f.listen();
  RecordingClientFactory silent;  // plain TCP that sends nothing
  auto connector = connect_tcp(f.reactor, "127.0.0.1", f.port->port(), silent);
  wait_for(f.reactor, [&] { return silent.lost == 1; }, "the server to give up");
  CHECK(f.server.records.empty());  // no protocol was built for it
  f.stop();
}

TEST_CASE("tls client timeout covers a server that never answers the handshake") {
  TestPki pki;
  Reactor reactor;
  RecordingFactory mute;  // accepts TCP and says nothing
  auto port = listen_tcp(reactor, 0, mute, loopback());
  auto copt = client_options(pki);
  copt.timeout = 0.2;
  TlsClientContext cctx(copt);
  RecordingClientFactory client;
  auto connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, cctx);
  wait_for(reactor, [&] { return client.failed == 1; }, "the client to give up");
  CHECK(client.failure->is(error::timed_out));
  wait_for(reactor, [&] { return !mute.records.empty() && mute.records[0].done(); },
           "the mute server to see the close");
  port->stop_listening();
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("tls abort, write after lose, and the peer closing without close_notify") {
  TlsFixture f;
  f.server.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) { rr.transport->abort_connection(); };
  };
  f.client.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("x"); }; };
  f.start();
  wait_for(f.reactor, [&] { return f.both_closed(); }, "both ends");
  CHECK(f.server.records[0].reason->is(error::connection_aborted));
  CHECK_FALSE(f.client.records[0].reason->clean());  // reset or truncated: not a clean close
  f.stop();
}

namespace {

// What a protocol saw, kept after the transport destroyed the protocol.
struct Outcome {
  std::string received;
  std::optional<Reason> reason;
  std::optional<TlsInfo> info;
};

// A toy STARTTLS exchange: the client says "STARTTLS\n", the server answers "GO\n" in
// clear and switches; both then talk TLS. Both sides also write around the switch.
struct StartTlsServer : Protocol {
  const TlsServerContext* ctx = nullptr;
  Outcome* out = nullptr;
  std::string received;
  std::optional<TlsInfo> info;
  bool switched = false;
  void data_received(std::string_view d) override {
    received.append(d);
    if (!switched && received.find("STARTTLS\n") != std::string::npos) {
      switched = true;
      transport().write("GO\n");  // clear text, before the switch
      start_tls(transport(), *ctx);
      transport().write("welcome\n");  // held, then encrypted
      return;
    }
    if (switched && received.find("secret\n") != std::string::npos) {
      info = tls_info(transport());
      transport().write("got it\n");
    }
  }
  void connection_lost(const Reason& r) override {
    if (out) *out = Outcome{received, r, info};
  }
};

struct StartTlsClient : Protocol {
  const TlsClientContext* ctx = nullptr;
  Outcome* out = nullptr;
  std::string name = "localhost";
  std::string received;
  bool switched = false;
  void connection_made() override { transport().write("hello in clear\nSTARTTLS\n"); }
  void data_received(std::string_view d) override {
    received.append(d);
    if (!switched && received.find("GO\n") != std::string::npos) {
      switched = true;
      start_tls(transport(), *ctx, name);
      transport().write("secret\n");
      return;
    }
    if (received.find("got it\n") != std::string::npos) transport().lose_connection();
  }
  void connection_lost(const Reason& r) override {
    if (out) *out = Outcome{received, r, {}};
  }
};

}  // namespace

TEST_CASE("start_tls switches a live TCP connection without losing or reordering bytes") {
  TestPki pki;
  Reactor reactor;
  TlsServerContext sctx(server_options(pki));
  TlsClientContext cctx(client_options(pki));
  Outcome server, client;
  FunctionFactory<Factory> sfactory([&](const Address&) {
    auto p = std::make_unique<StartTlsServer>();
    p->ctx = &sctx;
    p->out = &server;
    return with_start_tls(std::move(p));
  });
  auto port = listen_tcp(reactor, 0, sfactory, loopback());
  FunctionFactory<ClientFactory> cfactory([&](const Address&) {
    auto p = std::make_unique<StartTlsClient>();
    p->ctx = &cctx;
    p->out = &client;
    return with_start_tls(std::move(p));
  });
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), cfactory);
  wait_for(reactor, [&] { return client.reason && server.reason; }, "the STARTTLS exchange");
  const auto& client_received = client.received;
  const auto& server_received = server.received;
  const auto& client_reason = client.reason;
  const auto& server_reason = server.reason;
  const auto& info = server.info;
  CHECK(client_received == "GO\nwelcome\ngot it\n");
  CHECK(server_received == "hello in clear\nSTARTTLS\nsecret\n");
  CHECK(client_reason->clean());
  CHECK(server_reason->clean());
  REQUIRE(info);
  CHECK(info->version == "TLSv1.3");
  port->stop_listening();
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("start_tls handshake failure ends the connection with a reason") {
  TestPki pki;
  Reactor reactor;
  TlsServerContext sctx(server_options(pki));
  TlsClientContext cctx(client_options(pki));
  FunctionFactory<Factory> sfactory([&](const Address&) {
    auto p = std::make_unique<StartTlsServer>();
    p->ctx = &sctx;
    return with_start_tls(std::move(p));
  });
  auto port = listen_tcp(reactor, 0, sfactory, loopback());
  Outcome outcome;
  const auto& reason = outcome.reason;
  FunctionFactory<ClientFactory> cfactory([&](const Address&) {
    auto p = std::make_unique<StartTlsClient>();
    p->ctx = &cctx;
    p->name = "wrong.example";
    p->out = &outcome;
    return with_start_tls(std::move(p));
  });
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), cfactory);
  wait_for(reactor, [&] { return reason.has_value(); }, "the failure");
  CHECK(reason->is(error::tls_failed));
  CHECK(reason->message().find("hostname mismatch") != std::string::npos);
  CHECK_THROWS_AS(with_start_tls(nullptr), std::invalid_argument);
  port->stop_listening();
}

TEST_CASE("start_tls on a transport that was not wrapped is a programming error") {
  TestPki pki;
  Reactor reactor;
  TlsClientContext cctx(client_options(pki));
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  bool threw = false;
  client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      try {
        start_tls(*rr.transport, cctx, "localhost");
      } catch (const std::logic_error& e) {
        threw = std::string(e.what()).find("with_start_tls") != std::string::npos;
      }
      rr.transport->lose_connection();
    };
  };
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the close");
  CHECK(threw);
  port->stop_listening();
}

TEST_CASE("tls server given garbage instead of a ClientHello drops it with a logged reason") {
  // A plain-text client speaks HTTP to a TLS port. The server must fail that handshake
  // alone: no protocol built, the reason logged with the connection's addresses, the
  // client disconnected, nothing left; and the port keeps serving real TLS clients.
  TlsFixture f;
  std::vector<std::string> logged;
  set_log_sink([&](LogLevel, std::string_view line) { logged.emplace_back(line); });
  f.listen();

  RecordingClientFactory garbage;
  garbage.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); };
  };
  connect_tcp(f.reactor, "127.0.0.1", f.port->port(), garbage);
  wait_for(f.reactor, [&] { return garbage.lost == 1; }, "the server to drop the plain client");
  CHECK(f.server.records.empty());  // no protocol ever saw the garbage

  f.client.setup = [](Record& r) {  // a real TLS client
    r.on_made = [](Record& rr) { rr.transport->lose_connection(); };
  };
  f.connect();
  wait_for(f.reactor, [&] { return f.both_closed(); }, "a real TLS client");
  set_log_sink(nullptr);
  CHECK(f.client.failed == 0);
  CHECK(f.server.records.size() == 1);
  f.port->stop_listening();
  wait_for(f.reactor, [&] { return f.reactor.connection_count() == 0; }, "every transport to go");
  std::string lines;
  for (const std::string& l : logged) lines += l + "\n";
  INFO(lines);
  CHECK(std::any_of(logged.begin(), logged.end(), [](const std::string& l) {
    return l.find("127.0.0.1") != std::string::npos &&
           (l.find("http request") != std::string::npos ||
            l.find("wrong version number") != std::string::npos);
  }));
}

namespace {

// One connection from a client holding (cert, key) (none when empty) to a server that
// verifies clients as `mode`: what each side saw.
struct MutualOutcome {
  std::optional<TlsInfo> server_info;  // set when the server protocol was made
  std::optional<Reason> server_failure;  // from handshake_failed
  std::optional<TlsInfo> client_info;
  std::optional<Reason> client_reason;  // connection failed, or lost after being made
  bool client_made = false;
  std::string echoed;
};

// Which certificate the client of mutual() presents.
enum class ClientCert { none, signed_by_ca, stranger };

MutualOutcome mutual(VerifyClient mode, ClientCert cert) {
  MutualOutcome out;
  TlsFixture f;
  f.sopt.verify_client = mode;
  if (mode != VerifyClient::none) f.sopt.ca_file = f.pki.ca_file;
  f.sopt.handshake_failed = [&](const Address& peer, const Reason& r) {
    CHECK(peer.host() == "127.0.0.1");
    out.server_failure = r;
  };
  f.server.setup = [&](Record& r) {
    echo_setup(r);
    r.on_made = [&](Record& rr) { out.server_info = tls_info(*rr.transport); };
  };
  if (cert == ClientCert::signed_by_ca) {
    f.copt.certificate_file = f.pki.client_cert_file;
    f.copt.private_key_file = f.pki.client_key_file;
  } else if (cert == ClientCert::stranger) {
    f.copt.certificate_file = f.pki.stranger_cert_file;
    f.copt.private_key_file = f.pki.stranger_key_file;
  }
  f.client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      out.client_made = true;
      out.client_info = tls_info(*rr.transport);
    };
  };
  f.start();
  auto& client = f.client;
  auto& server = f.server;
  wait_for(f.reactor, [&] {
    return client.failed == 1 || client.lost == 1 || !server.records.empty() ||
           out.server_failure;
  }, "the handshake to end on one side");
  if (!server.records.empty()) {  // accepted: echo one line, then close from the client
    REQUIRE(client.records.size() == 1);
    client.records[0].transport->write("hello\n");
    wait_for(f.reactor, [&] { return client.records[0].received == "hello\n"; }, "the echo");
    out.echoed = client.records[0].received;
    client.records[0].transport->lose_connection();
    wait_for(f.reactor, [&] { return f.both_closed(); }, "both sides to close");
    CHECK(server.records[0].reason->clean());
    out.client_reason = client.lost_reason;
  } else {
    wait_for(f.reactor, [&] { return (client.failed == 1 || client.lost == 1) && out.server_failure; },
             "both sides to hear of the failure");
    out.client_reason = client.failed ? client.failure : client.lost_reason;
    CHECK(server.records.empty());  // no server protocol was built
  }
  f.port->stop_listening();
  f.reactor.run_until([&] { return f.reactor.connection_count() == 0; }, 5);
  CHECK(f.reactor.connection_count() == 0);
  return out;
}

}  // namespace

TEST_CASE("tls mutual: a server requiring a client certificate sees who connected") {
  const auto out = mutual(VerifyClient::required, ClientCert::signed_by_ca);
  REQUIRE(out.server_info);
  CHECK(out.server_info->peer_certificate);
  CHECK(out.server_info->peer_verified);
  CHECK(out.server_info->peer_common_name == "torsion client");
  CHECK(out.server_info->peer_subject.find("CN=torsion client") != std::string::npos);
  REQUIRE(out.client_info);
  CHECK(out.client_info->peer_common_name == "localhost");
  CHECK(out.client_info->peer_verified);
  CHECK(out.echoed == "hello\n");
  REQUIRE(out.client_reason);
  CHECK(out.client_reason->clean());
}

TEST_CASE("tls mutual: a missing or untrusted client certificate fails on both sides") {
  SUBCASE("missing") {
    const auto out = mutual(VerifyClient::required, ClientCert::none);
    REQUIRE(out.server_failure);
    CHECK(out.server_failure->is(error::tls_failed));
    CHECK(out.server_failure->message().find("peer did not return a certificate") !=
          std::string::npos);
    REQUIRE(out.client_reason);
    CHECK(out.client_reason->is(error::tls_failed));
    CHECK(out.client_reason->message().find("certificate required") != std::string::npos);
    CHECK(!out.server_info);
  }
  SUBCASE("untrusted") {
    const auto out = mutual(VerifyClient::required, ClientCert::stranger);
    REQUIRE(out.server_failure);
    CHECK(out.server_failure->is(error::tls_failed));
    CHECK(out.server_failure->message().find("unable to get local issuer certificate") !=
          std::string::npos);
    REQUIRE(out.client_reason);
    CHECK(out.client_reason->is(error::tls_failed));
    CHECK(out.client_reason->message().find("unknown ca") != std::string::npos);
  }
  SUBCASE("untrusted, even when optional") {
    const auto out = mutual(VerifyClient::optional, ClientCert::stranger);
    REQUIRE(out.server_failure);
    CHECK(out.server_failure->message().find("unable to get local issuer certificate") !=
          std::string::npos);
    REQUIRE(out.client_reason);
    CHECK(out.client_reason->is(error::tls_failed));
  }
}

TEST_CASE("tls mutual: optional client certificates") {
  SUBCASE("without one the client connects") {
    const auto out = mutual(VerifyClient::optional, ClientCert::none);
    REQUIRE(out.server_info);
    CHECK(!out.server_info->peer_certificate);
    CHECK(!out.server_info->peer_verified);
    CHECK(out.server_info->peer_common_name.empty());
    CHECK(out.server_info->peer_subject.empty());
    CHECK(out.echoed == "hello\n");
  }
  SUBCASE("with one the server sees it") {
    const auto out = mutual(VerifyClient::optional, ClientCert::signed_by_ca);
    REQUIRE(out.server_info);
    CHECK(out.server_info->peer_certificate);
    CHECK(out.server_info->peer_verified);
    CHECK(out.server_info->peer_common_name == "torsion client");
  }
  SUBCASE("a server that does not ask never sees one") {
    const auto out = mutual(VerifyClient::none, ClientCert::signed_by_ca);
    REQUIRE(out.server_info);
    CHECK(!out.server_info->peer_certificate);
  }
}

TEST_CASE("tls mutual interop: openssl s_client presents a certificate to listen_ssl") {
  TlsFixture f;
  f.sopt.verify_client = VerifyClient::required;
  f.sopt.ca_file = f.pki.ca_file;
  f.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      const auto info = tls_info(*rr.transport);
      REQUIRE(info);
      rr.transport->write("hello " + info->peer_common_name + "\n");
    };
  };
  f.listen();
  OpenSslClient s_client("\n");
  auto p = spawn_process(f.reactor, s_client,
                         s_client_command(f.pki, f.port->port(),
                                          {"-cert", f.pki.client_cert_file, "-key",
                                           f.pki.client_key_file}));
  wait_for(f.reactor, [&] { return s_client.status.has_value(); }, "s_client to finish");
  CHECK(s_client.out == "hello torsion client\n");
  REQUIRE(f.server.records.size() == 1);
  wait_for(f.reactor, [&] { return f.server.records[0].done(); }, "the server side to close");
  f.stop();
}

namespace {

// Reads until the peer's end, then answers with what it read, upper-cased, and closes:
// a request/response protocol that needs the client's half-close.
class UpcaseOnEof : public Protocol {
 public:
  explicit UpcaseOnEof(Record& r) : r_(r) {}
  void connection_made() override { ++r_.made; }
  void data_received(std::string_view d) override { r_.received.append(d); }
  bool eof_received() override {
    ++r_.eofs;
    std::string answer = r_.received;
    for (char& c : answer) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    transport().write(answer);
    transport().lose_connection();
    return true;
  }
  void connection_lost(const Reason& reason) override {
    ++r_.lost;
    r_.reason = reason;
  }

 private:
  Record& r_;
};

// Sends `request`, half-closes, and reads the answer until the server's end.
class HalfCloser : public Protocol {
 public:
  HalfCloser(Record& r, std::string request) : r_(r), request_(std::move(request)) {}
  void connection_made() override {
    ++r_.made;
    transport().write(request_);
    transport().lose_write_connection();
    transport().write("dropped: written after lose_write_connection");
    transport().lose_write_connection();  // idempotent
  }
  void data_received(std::string_view d) override { r_.received.append(d); }
  bool eof_received() override {
    ++r_.eofs;
    return false;
  }
  void connection_lost(const Reason& reason) override {
    ++r_.lost;
    r_.reason = reason;
  }

 private:
  Record& r_;
  std::string request_;
};

}  // namespace

TEST_CASE("tls lose_write_connection is a half-close: the answer still arrives") {
  TestPki pki;
  Reactor reactor;
  TlsServerContext sctx(server_options(pki));
  Record server;
  FunctionFactory<Factory> server_factory(
      [&](const Address&) { return std::make_unique<UpcaseOnEof>(server); });
  auto port = listen_ssl(reactor, 0, server_factory, sctx, "127.0.0.1");
  TlsClientContext cctx(client_options(pki));
  Record client;
  std::string request;
  for (int i = 0; request.size() < 300 * 1024; ++i) request += "line " + std::to_string(i) + "\n";
  FunctionFactory<ClientFactory> client_factory(
      [&](const Address&) { return std::make_unique<HalfCloser>(client, request); });
  auto connector = connect_ssl(reactor, "127.0.0.1", port->port(), client_factory, cctx);
  wait_for(reactor, [&] { return client.lost == 1 && server.lost == 1; }, "both sides to close");
  CHECK(server.received == request);  // queued bytes went before close_notify, nothing after
  CHECK(server.eofs == 1);
  std::string upper = request;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(client.received == upper);  // read after our close_notify
  CHECK(client.eofs == 1);
  REQUIRE(client.reason);
  REQUIRE(server.reason);
  CHECK(client.reason->clean());
  CHECK(server.reason->clean());
  port->stop_listening();
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("tls half-close from the server: the client still writes, then half-closes too") {
  TlsFixture f;
  f.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("greeting\n");
      rr.transport->lose_write_connection();
    };
  };
  f.client.setup = [](Record& r) {
    r.keep_open_on_eof = true;  // the server is done writing; we are not
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received == "greeting\n") {
        rr.transport->write("reply after your close_notify\n");
        rr.transport->lose_write_connection();  // both sides half-closed: then both done
      }
    };
  };
  f.start();
  wait_for(f.reactor, [&] { return f.both_closed(); }, "both sides to close");
  REQUIRE(f.client.records.size() == 1);
  CHECK(f.client.records[0].received == "greeting\n");
  CHECK(f.client.records[0].eofs == 1);
  CHECK(f.client.records[0].reason->clean());
  CHECK(f.server.records[0].received == "reply after your close_notify\n");
  CHECK(f.server.records[0].eofs == 1);
  CHECK(f.server.records[0].reason->clean());
  f.stop();
}

TEST_CASE("tls half-close interop: openssl s_client reads our close_notify, we read its") {
  TlsFixture f;
  f.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("greeting from a half-closed server\n");
      rr.transport->lose_write_connection();
    };
  };
  f.listen();
  // s_client keeps stdin open: it ends because it read our close_notify, and then sends
  // its own.
  OpenSslClient s_client;
  auto p = spawn_process(f.reactor, s_client, s_client_command(f.pki, f.port->port()));
  wait_for(f.reactor, [&] { return s_client.status.has_value(); }, "s_client to finish");
  CHECK(s_client.out == "greeting from a half-closed server\n");
  REQUIRE(f.server.records.size() == 1);
  wait_for(f.reactor, [&] { return f.server.records[0].done(); }, "the server side to close");
  CHECK(f.server.records[0].eofs == 1);  // s_client's close_notify, read after ours
  CHECK(f.server.records[0].reason->clean());
  f.stop();
}

TEST_CASE("tls half-closed in connection_made: still reads, and a later close is bounded") {
  TlsFixture f;
  // The server greets, then stops reading: it never answers a close_notify.
  f.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("hi");
      rr.transport->pause_producing();
    };
  };
  f.copt.close_timeout = 0.2;
  f.client.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->lose_write_connection();  // nothing queued: close_notify at once
      CHECK(rr.transport->connected());       // reading goes on
    };
    r.on_data = [](Record& rr, std::string_view) { rr.transport->lose_connection(); };
  };
  f.start();
  const double start = f.reactor.seconds();
  wait_for(f.reactor, [&] { return f.client.lost == 1; }, "the bounded close");
  CHECK(f.reactor.seconds() - start < 5);
  REQUIRE(f.client.records.size() == 1);
  CHECK(f.client.records[0].received == "hi");  // read after our close_notify
  CHECK(f.client.records[0].reason->clean());
  REQUIRE(f.server.records.size() == 1);
  CHECK(f.server.records[0].lost == 0);
  f.server.records[0].transport->abort_connection();
  wait_for(f.reactor, [&] { return f.server.records[0].done(); },
           "the paused server's connection_lost");
  f.stop();
}

TEST_CASE("tls server picks its certificate by SNI") {
  TlsFixture f;  // default certificate: CN localhost
  auto& pki = f.pki;
  auto& reactor = f.reactor;
  f.sopt.sni_certificates = {{"Other.TEST", pki.other_cert_file, pki.other_key_file},
                             {"*.wild.test", pki.client_cert_file, pki.client_key_file}};
  f.server.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->lose_connection(); };
  };
  f.listen();
  auto& port = f.port;

  // The common name of the certificate the server presents to a client naming `name`.
  const auto presented = [&](const std::string& name, bool verify) {
    auto copt = client_options(pki);
    copt.server_name = name;
    copt.verify_peer = verify;
    TlsClientContext cctx(copt);
    RecordingClientFactory client;
    std::string cn;
    client.setup = [&](Record& r) {
      r.on_made = [&](Record& rr) { cn = tls_info(*rr.transport)->peer_common_name; };
    };
    auto connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, cctx);
    wait_for(reactor, [&] { return client.lost == 1 || client.failed == 1; }, "the connection");
    CHECK(client.failed == 0);
    return cn;
  };
  CHECK(presented("other.test", true) == "other.test");  // verified under that name
  CHECK(presented("OTHER.test", true) == "other.test");
  CHECK(presented("localhost", true) == "localhost");
  CHECK(presented("127.0.0.1", true) == "localhost");  // a numeric host sends no SNI
  CHECK(presented("unknown.test", false) == "localhost");
  CHECK(presented("a.wild.test", false) == "torsion client");
  CHECK(presented("a.b.wild.test", false) == "localhost");  // one label only
  CHECK(presented("wild.test", false) == "localhost");
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("tls SNI certificates: bad entries throw naming them") {
  TestPki pki;
  auto sopt = server_options(pki);
  sopt.sni_certificates = {{"", pki.other_cert_file, pki.other_key_file}};
  CHECK_THROWS_WITH_AS(TlsServerContext{sopt}, doctest::Contains("host_name must not be empty"),
                       std::invalid_argument);
  sopt.sni_certificates = {{"other.test", pki.other_cert_file, pki.key_file}};
  CHECK_THROWS_WITH_AS(TlsServerContext{sopt}, doctest::Contains("does not match"),
                       std::invalid_argument);
  sopt.sni_certificates = {{"other.test", pki.dir + "/missing.pem", pki.other_key_file}};
  CHECK_THROWS_WITH_AS(TlsServerContext{sopt}, doctest::Contains("missing.pem' cannot be read"),
                       std::invalid_argument);
  sopt.sni_certificates = {{"other.test", pki.other_key_file, pki.other_key_file}};
  CHECK_THROWS_WITH_AS(TlsServerContext{sopt}, doctest::Contains("holds no PEM certificate"),
                       std::invalid_argument);
  sopt.sni_certificates = {{"other.test", pki.other_cert_file, pki.other_key_file},
                           {"OTHER.test", pki.other_cert_file, pki.other_key_file}};
  CHECK_THROWS_WITH_AS(TlsServerContext{sopt}, doctest::Contains("listed twice"),
                       std::invalid_argument);
}
