#include "transports/tls.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <asio/post.hpp>
#include <csignal>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <deque>
#include <fstream>
#include <iterator>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "framework/log.hpp"
#include "framework/reactor_pool.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/openssl_peers.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/tls_fixture.hpp"
#include "tests/support/wait.hpp"
#include "transports/detail/stream_engine.hpp"
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
using torsion::test::client_options;
using torsion::test::server_options;
using torsion::test::TestPki;
using torsion::test::TlsFixture;
using torsion::test::echo_setup;
using torsion::test::echo_once;
using torsion::test::encrypted_key;
using torsion::test::read_file;
using torsion::test::wait_for;

namespace {

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

// --- coalescing small writes: over listen_ssl/connect_ssl and over start_tls ---------

namespace {

// A pattern that shows reordering or loss: byte i is a function of i and of `salt`.
std::string coalesce_pattern(std::size_t size, std::size_t salt) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + salt * 13 + i / 251) % 26);
  return s;
}

// A TLS server and client on one reactor: over listen_ssl/connect_ssl, or over TCP with
// start_tls called first thing in connection_made on both sides (every write the test
// makes is then held until the handshake is done, and goes encrypted). The server runs
// `answer` once, on the first bytes it receives; the client writes one byte when made.
struct TlsPair {
  bool use_start_tls;
  TestPki pki;
  Reactor reactor;
  TlsServerContext sctx{server_options(pki)};
  TlsClientContext cctx{client_options(pki)};
  std::deque<Record> servers;
  Record client;
  int client_deliveries = 0;  // each TLS record is delivered alone: the records received
  std::function<void(Record&)> answer;
  std::function<void(Record&, std::string_view)> client_on_data;
  std::vector<Protocol*> server_wrappers;  // start_tls: its transport() is the TCP one
  FunctionFactory<Factory> sfactory{[this](const Address&) {
    Record& r = servers.emplace_back();
    r.on_data = [this, fired = false](Record& rr, std::string_view) mutable {
      if (fired) return;
      fired = true;
      answer(rr);
    };
    return build(r, true);
  }};
  FunctionFactory<ClientFactory> cfactory{[this](const Address&) {
    client.on_made = [](Record& rr) { rr.transport->write("?"); };
    client.on_data = [this](Record& rr, std::string_view d) {
      ++client_deliveries;
      if (client_on_data) client_on_data(rr, d);
    };
    return build(client, false);
  }};
  std::shared_ptr<ListeningPort> port;
  std::shared_ptr<Connector> connector;

  TlsPair(bool start_tls_kind, std::function<void(Record&)> server_answer)
      : use_start_tls(start_tls_kind), answer(std::move(server_answer)) {
    if (use_start_tls) {
      TcpListenOptions lo;
      lo.interface = "127.0.0.1";
      port = listen_tcp(reactor, 0, sfactory, lo);
      connector = connect_tcp(reactor, "127.0.0.1", port->port(), cfactory);
    } else {
      port = listen_ssl(reactor, 0, sfactory, sctx, "127.0.0.1");
      connector = connect_ssl(reactor, "127.0.0.1", port->port(), cfactory, cctx);
    }
  }

  std::unique_ptr<Protocol> build(Record& r, bool server) {
    auto p = std::make_unique<test::Recording>(r);
    if (!use_start_tls) return p;
    r.on_made = [this, server, then = r.on_made](Record& rr) {
      if (server)
        start_tls(*rr.transport, sctx);
      else
        start_tls(*rr.transport, cctx, "localhost");
      if (then) then(rr);
    };
    auto w = with_start_tls(std::move(p));
    if (server) server_wrappers.push_back(w.get());
    return w;
  }

  Record& srv() { return servers.at(0); }
  // start_tls only: the send calls the server's TCP transport made so far.
  std::uint64_t server_sends() {
    auto* counter = dynamic_cast<detail::WriteCounter*>(&server_wrappers.at(0)->transport());
    REQUIRE(counter != nullptr);
    return counter->write_calls;
  }
  void wait_closed(const char* what) {
    wait_for(reactor, [&] { return client.done() && !servers.empty() && srv().done(); }, what);
    port->stop_listening();
    reactor.run_until([&] { return reactor.connection_count() == 0; }, 5);
    CHECK(reactor.connection_count() == 0);
  }
};

}  // namespace

TEST_CASE("tls coalesces a thousand 32-byte writes in one data_received into few records") {
  constexpr std::size_t kWrites = 1000, kSize = 32;
  std::string expected;
  for (std::size_t i = 0; i < kWrites; ++i) expected += coalesce_pattern(kSize, i);
  for (const bool over_start_tls : {false, true}) {
    CAPTURE(over_start_tls);
    std::uint64_t sends_before = 0, sends_after = 0;
    TlsPair* pair = nullptr;
    TlsPair p(over_start_tls, [&](Record& r) {
      if (pair->use_start_tls) sends_before = pair->server_sends();
      for (std::size_t i = 0; i < kWrites; ++i) r.transport->write(coalesce_pattern(kSize, i));
    });
    pair = &p;
    p.client_on_data = [&](Record& rr, std::string_view) {
      if (rr.received.size() < expected.size()) return;
      if (p.use_start_tls) sends_after = p.server_sends();
      rr.transport->lose_connection();
    };
    p.wait_closed("the burst and the close");
    CHECK(p.client.received == expected);  // every byte, in order
    // 32000 bytes fill two records of at most 16 KiB; one write each would be 1000.
    CHECK(p.client_deliveries <= 3);
    // Two records, two sends; a little slack for a send the kernel takes only in part.
    if (over_start_tls) CHECK(sends_after - sends_before <= 4);
    CHECK(p.client.reason->clean());
    CHECK(p.srv().reason->clean());
  }
}

TEST_CASE("tls coalesced writes keep their order across write, write(string&&) and write_sequence") {
  // Small pieces around a large one (more than a record): every path, in order.
  std::string expected;
  const auto answer = [&expected](Record& r) {
    Transport& t = *r.transport;
    std::string big = coalesce_pattern(40000, 99);
    for (std::size_t i = 0; i < 300; ++i) {
      const std::string a = coalesce_pattern(7, i), b = coalesce_pattern(5, i + 1),
                        c = coalesce_pattern(3, i + 2), d = coalesce_pattern(11, i + 3);
      t.write(std::string_view(a));
      t.write(std::string(b));
      const std::string_view parts[] = {c, d};
      t.write_sequence(parts);
      if (i == 150) t.write(std::string(big));
    }
  };
  for (std::size_t i = 0; i < 300; ++i) {
    expected += coalesce_pattern(7, i) + coalesce_pattern(5, i + 1) + coalesce_pattern(3, i + 2) +
                coalesce_pattern(11, i + 3);
    if (i == 150) expected += coalesce_pattern(40000, 99);
  }
  for (const bool over_start_tls : {false, true}) {
    CAPTURE(over_start_tls);
    TlsPair p(over_start_tls, answer);
    p.client_on_data = [&](Record& rr, std::string_view) {
      if (rr.received.size() >= expected.size()) rr.transport->lose_connection();
    };
    p.wait_closed("the answer and the close");
    CHECK(p.client.received == expected);
    CHECK(p.client_deliveries <= 6);  // 50 KiB in records of 16 KiB, not 1200 records
    CHECK(p.client.reason->clean());
  }
}

TEST_CASE("tls lose_connection right after coalesced writes delivers them all, then closes") {
  std::string expected;
  for (std::size_t i = 0; i < 1000; ++i) expected += coalesce_pattern(32, i);
  for (const bool over_start_tls : {false, true}) {
    CAPTURE(over_start_tls);
    TlsPair p(over_start_tls, [](Record& r) {
      for (std::size_t i = 0; i < 1000; ++i) r.transport->write(coalesce_pattern(32, i));
      r.transport->lose_connection();
      r.transport->write("dropped: written after lose_connection");
    });
    p.wait_closed("the burst and the server's close");
    CHECK(p.client.received == expected);
    CHECK(p.client.eofs == 1);  // the server's close_notify came after the data
    CHECK(p.client.reason->clean());
    CHECK(p.srv().reason->clean());
  }
}

TEST_CASE("tls an exception in data_received after coalesced writes aborts; none of them leaves") {
  for (const bool over_start_tls : {false, true}) {
    CAPTURE(over_start_tls);
    TlsPair p(over_start_tls, [](Record& r) {
      for (int i = 0; i < 100; ++i) r.transport->write("held;");  // 500 bytes: one record
      throw std::runtime_error("boom");
    });
    p.wait_closed("both sides to close");
    CHECK(p.srv().reason->is(error::callback_threw));
    CHECK(p.client.received.empty());
    CHECK(!p.client.reason->clean());
  }
}

namespace {
struct CountingTlsProducer final : Producer {
  int paused = 0, resumed = 0, stopped = 0;
  void pause_producing() override { ++paused; }
  void resume_producing() override { ++resumed; }
  void stop_producing() override { ++stopped; }
};
}  // namespace

TEST_CASE("tls a streaming producer is paused by coalesced writes and resumed once they leave") {
  for (const bool over_start_tls : {false, true}) {
    CAPTURE(over_start_tls);
    CountingTlsProducer producer;
    TlsPair p(over_start_tls, [&](Record& r) {
      r.transport->set_write_buffer_limits(1000, 100);
      r.transport->register_producer(producer, /*streaming=*/true);
      // 50000 bytes: more than one record, so over start_tls too some wait in the queue
      // of the TCP transport below, whatever it sends at once.
      for (int i = 0; i < 5000; ++i) r.transport->write("0123456789");
    });
    p.client_on_data = [&](Record& rr, std::string_view) {
      if (rr.received.size() == 50000) rr.transport->lose_connection();
    };
    wait_for(p.reactor, [&] { return p.client.received.size() == 50000; }, "the written bytes");
    wait_for(p.reactor, [&] { return producer.resumed == 1; }, "the producer's resume");
    CHECK(producer.paused == 1);
    p.wait_closed("both sides to close");
    CHECK(producer.stopped == 1);  // the connection ended with the producer registered
  }
}

TEST_CASE("tls half-close: a read that completes as it is cancelled keeps its data") {
  // The race, made deterministic. Two records wait in the server's socket before it
  // reads: it takes both in one read and delivers the first; asio::ssl then has the second
  // decrypted already, so the next read completes at once, as a posted completion.
  // lose_write_connection, posted from that first data_received (so queued ahead of the
  // completion), finds the read in flight and cancels it; the cancel cannot stop a
  // completion already queued, and the read completes with data while close_notify is
  // due. The client runs on a reactor of its own, driven only when the test says, so
  // nothing reaches the server's socket unless the test has sent it.
  TestPki pki;
  Reactor server_reactor, client_reactor;
  const auto drive_both = [&](const std::function<bool()>& done, const char* what) {
    const double deadline = server_reactor.seconds() + 10;
    while (!done()) {
      REQUIRE_MESSAGE(server_reactor.seconds() < deadline, "timed out waiting for ", what);
      server_reactor.run_until(done, 0.002);
      client_reactor.run_until(done, 0.002);
    }
  };
  TlsServerContext sctx(server_options(pki));
  RecordingFactory server;
  bool posted = false;
  server.setup = [&](Record& r) {
    r.keep_open_on_eof = true;
    r.on_data = [&](Record& rr, std::string_view) {
      if (rr.received != "a") return;
      posted = true;
      asio::post(server_reactor.context(), [&rr] { rr.transport->lose_write_connection(); });
    };
  };
  auto port = listen_ssl(server_reactor, 0, server, sctx, "127.0.0.1");
  TlsClientContext cctx(client_options(pki));
  RecordingClientFactory client;
  client.setup = [](Record& r) { r.keep_open_on_eof = true; };
  auto connector = connect_ssl(client_reactor, "127.0.0.1", port->port(), client, cctx);
  drive_both([&] { return !server.records.empty() && !client.records.empty(); }, "the handshake");
  Record& srv = server.records[0];
  Record& cli = client.records[0];
  // Two records, each sent alone while the server is not running.
  for (const char* piece : {"a", "b"}) {
    cli.transport->write(piece);
    client_reactor.run_until([&] { return cli.transport->buffer_size() == 0; }, 5);
    REQUIRE(cli.transport->buffer_size() == 0);
  }
  server_reactor.run_until([&] { return srv.received == "ab"; }, 5);
  CHECK(posted);
  CHECK(srv.received == "ab");  // the record read as the cancel came was delivered
  CHECK(srv.transport->connected());
  // The client hears our close_notify, answers, and half-closes too: then both are done.
  drive_both([&] { return cli.eofs == 1; }, "the server's close_notify");
  cli.transport->write("c");
  cli.transport->lose_write_connection();
  drive_both([&] { return srv.done() && cli.done(); }, "both sides to close");
  CHECK(srv.received == "abc");
  CHECK(srv.eofs == 1);
  CHECK(srv.reason->clean());
  CHECK(cli.received.empty());
  CHECK(cli.reason->clean());
  port->stop_listening();
  drive_both([&] { return server_reactor.connection_count() == 0 && client_reactor.connection_count() == 0; },
             "no live connections");
}

// --- listen options, the pool, the handshake cap ----------------------------------------

namespace {

// Echoes; notes the thread of each connection. build_protocol runs on every reactor's
// thread at once, hence the lock.
class ThreadNotingEcho final : public Factory {
 public:
  class Echo final : public Protocol {
    void data_received(std::string_view d) override { transport().write(d); }
  };
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++per_thread_[std::this_thread::get_id()];
    return std::make_unique<Echo>();
  }
  std::map<std::thread::id, int> per_thread() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return per_thread_;
  }

 private:
  std::mutex mutex_;
  std::map<std::thread::id, int> per_thread_;
};

// `count` TLS clients of `port`, each sending its own line and closing on the echo.
void tls_echo_clients(Reactor& reactor, std::uint16_t port, const TlsClientContext& cctx,
                      std::deque<RecordingClientFactory>& clients,
                      std::vector<std::shared_ptr<Connector>>& connectors, int count) {
  for (int i = 0; i < count; ++i) {
    auto& client = clients.emplace_back();
    const std::string message = "hello from tls client " + std::to_string(i);
    client.setup = [message](Record& r) {
      r.on_made = [message](Record& rr) { rr.transport->write(message); };
      r.on_data = [message](Record& rr, std::string_view) {
        if (rr.received.size() >= message.size()) rr.transport->lose_connection();
      };
    };
    connectors.push_back(connect_ssl(reactor, "127.0.0.1", port, client, cctx));
  }
  wait_for(reactor, [&] {
    for (auto& c : clients)
      if (c.lost + c.failed == 0) return false;
    return true;
  }, "every TLS client to get its echo and close");
  for (std::size_t i = 0; i < clients.size(); ++i) {
    CHECK(clients[i].failed == 0);
    REQUIRE(clients[i].records.size() == 1);
    CHECK(clients[i].records[0].received == "hello from tls client " + std::to_string(i));
    CHECK(clients[i].records[0].reason->clean());
  }
}

}  // namespace

TEST_CASE("tls listen_ssl_pool spreads TLS connections over the reactors of a pool, a thread each") {
  constexpr int kClients = 24;
  TestPki pki;
  auto sctx = std::make_shared<const TlsServerContext>(server_options(pki));
  ReactorPool pool(2);
  ThreadNotingEcho factory;
  TlsListenOptions lo;
  lo.interface = "127.0.0.1";
  auto ports = listen_ssl_pool(pool, 0, factory, sctx, lo);
  sctx.reset();  // the ports keep it
  REQUIRE(ports.size() == 2);
  CHECK(ports[0]->port() != 0);
  CHECK(ports[1]->port() == ports[0]->port());
  pool.start();
  {
    Reactor reactor;
    TlsClientContext cctx(client_options(pki));
    std::deque<RecordingClientFactory> clients;
    std::vector<std::shared_ptr<Connector>> connectors;
    tls_echo_clients(reactor, ports[0]->port(), cctx, clients, connectors, kClients);
  }
  pool.stop();
  pool.join();
  // The kernel hashes each connection to one socket: with 24, both reactors get some
  // (all on one has odds of 2^-23), each on its own thread, never this one.
  const auto seen = factory.per_thread();
  REQUIRE(seen.size() == 2);
  int total = 0;
  for (const auto& [thread, n] : seen) {
    CHECK(thread != std::this_thread::get_id());
    CHECK(n > 0);
    total += n;
  }
  CHECK(total == kClients);
  CHECK_THROWS_AS(listen_ssl_pool(pool, 0, factory, nullptr), std::invalid_argument);
}

TEST_CASE("tls listen options read like TCP's: reuse_port, interface, backlog") {
  TestPki pki;
  Reactor reactor;
  auto sctx = std::make_shared<const TlsServerContext>(server_options(pki));
  RecordingFactory server;
  server.setup = echo_setup;
  TlsListenOptions lo;
  lo.interface = "127.0.0.1";
  lo.backlog = 16;
  lo.reuse_port = true;
  auto a = listen_ssl(reactor, 0, server, sctx, lo);
  auto b = listen_ssl(reactor, a->port(), server, sctx, lo);  // joins it: SO_REUSEPORT
  CHECK(b->port() == a->port());
  CHECK(a->get_host().host() == "127.0.0.1");
  lo.reuse_port = false;
  CHECK_THROWS_AS(listen_ssl(reactor, a->port(), server, sctx, lo), std::system_error);
  lo.backlog = 0;
  CHECK_THROWS_WITH_AS(listen_ssl(reactor, 0, server, sctx, lo),
                       doctest::Contains("backlog must be in 1..65535, got 0"),
                       std::invalid_argument);
  lo.backlog = 16;
  lo.interface = "localhost";
  CHECK_THROWS_AS(listen_ssl(reactor, 0, server, sctx, lo), std::invalid_argument);
  TlsClientContext cctx(client_options(pki));
  std::deque<RecordingClientFactory> clients;
  std::vector<std::shared_ptr<Connector>> connectors;
  tls_echo_clients(reactor, a->port(), cctx, clients, connectors, 4);
  a->stop_listening();
  b->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to end");
}

TEST_CASE("tls a port caps the handshakes under way: the excess is closed at once, logged") {
  TlsFixture f;
  std::vector<std::string> logged;
  set_log_sink([&](LogLevel, std::string_view line) { logged.emplace_back(line); });
  TlsListenOptions lo;
  lo.interface = "127.0.0.1";
  lo.max_handshakes = 2;
  f.port = listen_ssl(f.reactor, 0, f.server, std::make_shared<const TlsServerContext>(f.sopt), lo);
  // Three plain TCP clients that never start a handshake: two hold the places, the third
  // is closed at once.
  std::deque<RecordingClientFactory> silent(3);
  std::vector<std::shared_ptr<Connector>> connectors;
  for (auto& s : silent) {
    connectors.push_back(connect_tcp(f.reactor, "127.0.0.1", f.port->port(), s));
    wait_for(f.reactor, [&] { return s.records.size() == 1; }, "the silent client to connect");
  }
  wait_for(f.reactor, [&] { return silent[2].lost == 1; }, "the third to be closed");
  CHECK(silent[0].lost == 0);
  CHECK(silent[1].lost == 0);
  // Once a place is free, a TLS client gets through.
  silent[0].records[0].transport->abort_connection();
  f.client.setup = [](Record& r) {
    r.on_made = [](Record& rr) { rr.transport->lose_connection(); };
  };
  f.connect();
  wait_for(f.reactor, [&] { return f.client.lost == 1 || f.client.failed == 1; }, "the client");
  CHECK(f.client.failed == 0);
  CHECK(f.client.lost == 1);
  silent[1].records[0].transport->abort_connection();
  f.port->stop_listening();
  wait_for(f.reactor, [&] { return f.reactor.connection_count() == 0; }, "every connection");
  set_log_sink(nullptr);
  CHECK(std::count_if(logged.begin(), logged.end(), [](const std::string& l) {
          return l.find("2 handshakes under way") != std::string::npos;
        }) == 1);
}

// --- versions, ciphers, identities from memory, encrypted keys -------------------------

TEST_CASE("tls certificates, keys and CAs from memory; an encrypted key with its passphrase") {
  TlsFixture f;
  f.sopt.certificate_chain_file.clear();
  f.sopt.private_key_file.clear();
  f.sopt.certificate_chain_pem = read_file(f.pki.cert_file);
  f.sopt.private_key_pem = encrypted_key(f.pki.key_file, "s3cret");
  f.sopt.private_key_passphrase = "s3cret";
  f.copt.ca_file.clear();
  f.copt.ca_pem = read_file(f.pki.ca_file);
  const auto [info, failure] = echo_once(f);
  CHECK(!failure);
  REQUIRE(f.client.records.size() == 1);
  CHECK(f.client.records[0].received == "ping");
  REQUIRE(info);
  CHECK(info->peer_common_name == "localhost");

  TlsServerOptions wrong = f.sopt;
  wrong.private_key_passphrase = "guess";
  CHECK_THROWS_WITH_AS(TlsServerContext{wrong}, doctest::Contains("private key (PEM text)"),
                       std::invalid_argument);
  wrong.private_key_passphrase.clear();  // fails; never asks on the terminal
  CHECK_THROWS_AS(TlsServerContext{wrong}, std::invalid_argument);
  TlsServerOptions both = server_options(f.pki);
  both.certificate_chain_pem = f.sopt.certificate_chain_pem;
  CHECK_THROWS_WITH_AS(TlsServerContext{both}, doctest::Contains("not both"),
                       std::invalid_argument);
  TlsClientOptions bad_ca;
  bad_ca.ca_pem = "not PEM";
  CHECK_THROWS_WITH_AS(TlsClientContext{bad_ca}, doctest::Contains("ca_pem"),
                       std::invalid_argument);
  // A client identity from memory, with its encrypted key.
  TlsClientOptions client = client_options(f.pki);
  client.certificate_pem = read_file(f.pki.client_cert_file);
  client.private_key_pem = encrypted_key(f.pki.client_key_file, "other");
  client.private_key_passphrase = "other";
  CHECK_NOTHROW(TlsClientContext{client});
}

TEST_CASE("tls versions and ciphers: pinned, agreed, refused") {
  SUBCASE("a server at most TLS 1.2 speaks 1.2") {
    TlsFixture f;
    f.sopt.max_version = TlsVersion::tls1_2;
    f.sopt.cipher_list = "ECDHE-ECDSA-CHACHA20-POLY1305";
    const auto [info, failure] = echo_once(f);
    CHECK(!failure);
    REQUIRE(info);
    CHECK(info->version == "TLSv1.2");
    CHECK(info->cipher == "ECDHE-ECDSA-CHACHA20-POLY1305");
  }
  SUBCASE("a TLS 1.3 suite chosen by the server") {
    TlsFixture f;
    f.sopt.cipher_suites = "TLS_CHACHA20_POLY1305_SHA256";
    const auto [info, failure] = echo_once(f);
    CHECK(!failure);
    REQUIRE(info);
    CHECK(info->version == "TLSv1.3");
    CHECK(info->cipher == "TLS_CHACHA20_POLY1305_SHA256");
  }
  SUBCASE("a client requiring 1.3 refuses a 1.2 server") {
    TlsFixture f;
    f.sopt.max_version = TlsVersion::tls1_2;
    f.copt.min_version = TlsVersion::tls1_3;
    const auto [info, failure] = echo_once(f);
    REQUIRE(failure);
    CHECK(failure->is(error::tls_failed));
    CHECK(!info);
  }
  SUBCASE("bad settings throw, naming them") {
    TestPki pki;
    TlsServerOptions o = server_options(pki);
    o.cipher_list = "NO-SUCH-CIPHER";
    CHECK_THROWS_WITH_AS(TlsServerContext{o}, doctest::Contains("cipher_list 'NO-SUCH-CIPHER'"),
                         std::invalid_argument);
    o.cipher_list.clear();
    o.cipher_suites = "TLS_NOPE";
    CHECK_THROWS_WITH_AS(TlsServerContext{o}, doctest::Contains("cipher_suites 'TLS_NOPE'"),
                         std::invalid_argument);
    TlsClientOptions c;
    c.min_version = TlsVersion::tls1_3;
    c.max_version = TlsVersion::tls1_2;
    CHECK_THROWS_WITH_AS(TlsClientContext{c}, doctest::Contains("min_version is above"),
                         std::invalid_argument);
  }
}
