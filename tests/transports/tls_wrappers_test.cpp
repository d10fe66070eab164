// tls_info, start_tls and peer_credentials through stacks of ProtocolWrappers: a policy
// wrapper (an idle time-out here) never hides what the transport beneath knows.
#include "transports/tls.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "protocols/timeout.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::client_options;
using torsion::test::server_options;
using torsion::test::TestPki;
using torsion::test::wait_for;

TEST_CASE("tls_info sees the client's certificate through a TimeoutFactory (mutual TLS)") {
  TestPki pki;
  Reactor reactor;
  TlsServerOptions sopt = server_options(pki);
  sopt.verify_client = VerifyClient::required;
  sopt.ca_file = pki.ca_file;
  TlsServerContext sctx(sopt);
  TlsClientOptions copt = client_options(pki);
  copt.certificate_file = pki.client_cert_file;
  copt.private_key_file = pki.client_key_file;
  TlsClientContext cctx(copt);

  RecordingFactory server;
  bool made = false;
  std::optional<TlsInfo> seen;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      made = true;
      seen = tls_info(*rr.transport);  // rr.transport is the time-out wrapper
      rr.transport->lose_connection();
    };
  };
  TimeoutFactory idle(server, reactor, 60);
  TimeoutFactory twice(idle, reactor, 120);  // a stack of two wrappers
  auto port = listen_ssl(reactor, 0, twice, sctx, "127.0.0.1");
  RecordingClientFactory client;
  auto connector = connect_ssl(reactor, "127.0.0.1", port->port(), client, cctx);
  wait_for(reactor, [&] { return made && client.lost == 1; }, "the connection and its close");
  REQUIRE(seen);
  CHECK(seen->peer_verified);
  CHECK(seen->peer_common_name == "torsion client");
  port->stop_listening();
  reactor.run_until([&] { return reactor.connection_count() == 0; }, test::kDeadline);
  CHECK(reactor.connection_count() == 0);
}

namespace {

// Says "GO\n" when it reads "STARTTLS\n", switches to TLS through whatever wrappers stand
// between it and the with_start_tls layer, then answers "secret\n" with its TLS version.
struct StartTlsBehindWrapper : Protocol {
  const TlsServerContext* ctx = nullptr;
  std::optional<TlsInfo>* info = nullptr;
  std::string received;
  bool switched = false;
  void data_received(std::string_view d) override {
    received.append(d);
    if (!switched && received.find("STARTTLS\n") != std::string::npos) {
      switched = true;
      transport().write("GO\n");
      start_tls(transport(), *ctx);
    } else if (switched && received.find("secret\n") != std::string::npos) {
      *info = tls_info(transport());
      transport().write("version " + (*info ? (*info)->version : std::string("none")) + "\n");
      transport().lose_connection();
    }
  }
};

struct StartTlsAsker : Protocol {
  const TlsClientContext* ctx = nullptr;
  std::string* answer = nullptr;  // what arrives after the switch
  std::string clear;
  bool switched = false;
  void connection_made() override { transport().write("STARTTLS\n"); }
  void data_received(std::string_view d) override {
    if (switched) {
      answer->append(d);
      return;
    }
    clear.append(d);
    if (clear == "GO\n") {
      switched = true;
      start_tls(transport(), *ctx, "localhost");
      transport().write("secret\n");
    }
  }
};

}  // namespace

TEST_CASE("start_tls and tls_info reach the with_start_tls layer through a wrapper") {
  TestPki pki;
  Reactor reactor;
  TlsServerContext sctx(server_options(pki));
  TlsClientContext cctx(client_options(pki));

  std::optional<TlsInfo> info;
  FunctionFactory<Factory> inner([&](const Address&) {
    auto p = std::make_unique<StartTlsBehindWrapper>();
    p->ctx = &sctx;
    p->info = &info;
    return p;
  });
  TimeoutFactory idle(inner, reactor, 60);
  // with_start_tls outside, the time-out wrapper inside: the protocol's transport() is
  // the wrapper, and start_tls must find the layer beneath it.
  FunctionFactory<Factory> outer(
      [&](const Address& peer) { return with_start_tls(idle.build_protocol(peer)); });
  auto port = listen_tcp(reactor, 0, outer, loopback());

  std::string answer;
  FunctionFactory<ClientFactory> client([&](const Address&) {
    auto p = std::make_unique<StartTlsAsker>();
    p->ctx = &cctx;
    p->answer = &answer;
    return with_start_tls(std::move(p));
  });
  auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), client);
  wait_for(reactor, [&] { return answer.find('\n') != std::string::npos; },
           "the answer over TLS");
  REQUIRE(info);
  CHECK(info->version == "TLSv1.3");
  CHECK(answer == "version TLSv1.3\n");
  port->stop_listening();
  reactor.run_until([&] { return reactor.connection_count() == 0; }, test::kDeadline);
  CHECK(reactor.connection_count() == 0);
}
