#include "transports/tls_endpoints.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/endpoint_error.hpp"
#include "tests/support/openssl_peers.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/process.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::error_of;
using torsion::test::OpenSslServer;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::reverse_ping;
using torsion::test::s_server_command;
using torsion::test::TestPki;
using torsion::test::wait_for;

namespace {

std::string server_string(const std::string& cert, const std::string& key) {
  return "ssl:0:interface=127.0.0.1:privateKey=" + escape_endpoint_value(key) +
         ":certKey=" + escape_endpoint_value(cert);
}

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  REQUIRE(in);
  REQUIRE(out);
  out << in.rdbuf();
}

// Sends `message`, closes once it is all back.
void ping(RecordingClientFactory& client, const std::string& message) {
  client.setup = [message](Record& r) {
    r.on_made = [message](Record& rr) { rr.transport->write(message); };
    r.on_data = [message](Record& rr, std::string_view) {
      if (rr.received.size() == message.size()) rr.transport->lose_connection();
    };
  };
}

}  // namespace

TEST_CASE("ssl endpoints from strings: echo round trip, endpoints dropped at once") {
  register_tls_endpoints();
  TestPki pki;
  Reactor reactor;
  RecordingFactory server;
  std::optional<TlsInfo> server_info;
  server.setup = [&](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
    r.on_made = [&](Record& rr) { server_info = tls_info(*rr.transport); };
  };
  // Each endpoint is a temporary: the context it owns must live on in the port and in
  // the connector (ASan would see a use after free otherwise).
  auto port = server_from_string(reactor, server_string(pki.cert_file, pki.key_file) +
                                              ":backlog=16:alpn=h2,http/1.1")
                  ->listen(server);
  REQUIRE(port);
  CHECK(port->get_host().host() == "127.0.0.1");

  RecordingClientFactory client;
  const std::string message(64 * 1024, 'e');
  ping(client, message);
  auto connector = client_from_string(reactor, "ssl:host=127.0.0.1:port=" +
                                                   std::to_string(port->port()) +
                                                   ":caCertsDir=" + pki.ca_file +
                                                   ":timeout=5:alpn=http/1.1")
                       ->connect(client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the echo and the close");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == message);
  CHECK(client.failed == 0);
  REQUIRE(server_info);
  CHECK(server_info->version == "TLSv1.3");
  CHECK(server_info->alpn == "http/1.1");
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("tls client endpoint: trustRoots directory, hostname as SNI, reconnect on one connector") {
  register_tls_endpoints();
  TestPki pki;
  // A directory of CAs, as Twisted's caCertsDir/trustRoots: only *.pem files count.
  const std::string roots = pki.dir + "/roots";
  REQUIRE(::mkdir(roots.c_str(), 0700) == 0);
  copy_file(pki.ca_file, roots + "/ca.PEM");
  copy_file(pki.key_file, roots + "/README.txt");  // not a .pem file: skipped

  Reactor reactor;
  RecordingFactory server;
  std::optional<TlsInfo> server_info;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      server_info = tls_info(*rr.transport);
      rr.transport->lose_connection();
    };
  };
  auto server_endpoint = server_from_string(reactor, "ssl:port=0:interface=127.0.0.1:privateKey=" +
                                                         pki.key_file + ":certKey=" + pki.cert_file);
  CHECK(server_endpoint->description() == "ssl:0:interface=127.0.0.1:backlog=511:privateKey=" +
                                              pki.key_file + ":certKey=" + pki.cert_file);
  // The description parses back to an equivalent endpoint.
  CHECK(server_from_string(reactor, server_endpoint->description())->description() ==
        server_endpoint->description());
  auto port = server_endpoint->listen(server);
  const std::string description = "tls:127.0.0.1:" + std::to_string(port->port()) +
                                  ":trustRoots=" + roots + ":hostname=localhost";
  auto endpoint = client_from_string(reactor, description);
  CHECK(endpoint->description() == "tls:host=127.0.0.1:port=" + std::to_string(port->port()) +
                                       ":timeout=30:trustRoots=" + roots +
                                       ":hostname=localhost:verify=true");
  RecordingClientFactory client;
  auto connector = endpoint->connect(client);
  endpoint.reset();
  wait_for(reactor, [&] { return client.lost == 1; }, "the first connection");
  REQUIRE(server_info);
  CHECK(server_info->server_name == "localhost");
  connector->connect();  // the connector still has its context
  wait_for(reactor, [&] { return client.lost == 2; }, "the second connection");
  CHECK(client.failed == 0);
  CHECK(client.records.size() == 2);
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("tls client endpoint presents its certificate to a server that requires one") {
  register_tls_endpoints();
  TestPki pki;
  Reactor reactor;
  // openssl s_server with -Verify refuses a client without a certificate the CA signed;
  // -rev answers each line reversed.
  OpenSslServer s_server;
  auto p = spawn_process(reactor, s_server,
                         s_server_command(pki, {"-Verify", "1", "-CAfile", pki.ca_file,
                                                "-verify_return_error"}));
  wait_for(reactor, [&] { return s_server.port != 0; }, "s_server's port");
  RecordingClientFactory client;
  reverse_ping(client);
  auto connector =
      client_from_string(reactor, "tls:127.0.0.1:" + std::to_string(s_server.port) +
                                      ":trustRoots=" + pki.ca_file + ":certificate=" +
                                      pki.cert_file + ":privateKey=" + pki.key_file)
          ->connect(client);
  wait_for(reactor, [&] { return client.lost == 1 || client.failed == 1; }, "the exchange");
  CHECK(client.failed == 0);
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received.find("noisrot") != std::string::npos);  // it was accepted
  p->signal_process(SIGTERM);
  wait_for(reactor, [&] { return s_server.status.has_value(); }, "s_server to end");
}

TEST_CASE("ssl client endpoint: a server that fails verification is a Reason, not a connection") {
  register_tls_endpoints();
  TestPki pki;
  Reactor reactor;
  RecordingFactory server;
  auto port = server_from_string(reactor, server_string(pki.stranger_cert_file,
                                                        pki.stranger_key_file))
                  ->listen(server);
  const std::string target = "ssl:127.0.0.1:" + std::to_string(port->port());

  SUBCASE("unknown CA") {
    RecordingClientFactory client;
    auto c = client_from_string(reactor, target + ":caCertsDir=" + pki.ca_file)->connect(client);
    wait_for(reactor, [&] { return client.failed == 1; }, "the handshake to fail");
    REQUIRE(client.failure);
    CHECK(client.failure->is(error::tls_failed));
    CHECK(client.failure->message().find("unable to get local issuer certificate") !=
          std::string::npos);
    CHECK(client.records.empty());
    CHECK(server.records.empty());  // a failed handshake never reaches a protocol
  }
  SUBCASE("name mismatch") {
    // A server the CA did sign, reached under a name its certificate does not hold.
    auto good = server_from_string(reactor, server_string(pki.cert_file, pki.key_file))
                    ->listen(server);
    RecordingClientFactory client;
    auto c = client_from_string(reactor, "ssl:127.0.0.1:" + std::to_string(good->port()) +
                                             ":hostname=other.example:verify=yes:caCertsDir=" +
                                             pki.ca_file)
                 ->connect(client);
    wait_for(reactor, [&] { return client.failed == 1; }, "the handshake to fail");
    REQUIRE(client.failure);
    CHECK(client.failure->is(error::tls_failed));
    CHECK(client.failure->message().find("hostname mismatch") != std::string::npos);
    CHECK(server.records.empty());
    good->stop_listening();
  }
  SUBCASE("verify=false is the explicit opt-out") {
    RecordingClientFactory client;
    client.setup = [](Record& r) {
      r.on_made = [](Record& rr) { rr.transport->lose_connection(); };
    };
    auto c = client_from_string(reactor, target + ":verify=false")->connect(client);
    wait_for(reactor, [&] { return client.lost == 1; }, "an unverified connection");
    CHECK(client.failed == 0);
  }
  port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("ssl server endpoint with caCertsDir requires and reads client certificates") {
  register_tls_endpoints();
  TestPki pki;
  const std::string cas = pki.dir + "/client-cas";
  REQUIRE(::mkdir(cas.c_str(), 0700) == 0);
  copy_file(pki.ca_file, cas + "/ca.pem");
  Reactor reactor;
  RecordingFactory server;
  std::vector<std::string> names;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      const auto info = tls_info(*rr.transport);
      REQUIRE(info);
      names.push_back(info->peer_certificate ? info->peer_common_name : "(none)");
      rr.transport->write(names.back());
      rr.transport->lose_connection();
    };
  };
  auto endpoint = server_from_string(reactor, server_string(pki.cert_file, pki.key_file) +
                                                  ":caCertsDir=" + cas);
  const std::string description = "ssl:0:interface=127.0.0.1:backlog=511:privateKey=" +
                                  pki.key_file + ":certKey=" + pki.cert_file +
                                  ":caCertsDir=" + cas + ":verifyClient=required";
  CHECK(endpoint->description() == description);
  CHECK(server_from_string(reactor, description)->description() == description);
  auto port = endpoint->listen(server);
  const std::string target = "ssl:127.0.0.1:" + std::to_string(port->port()) +
                             ":hostname=localhost:caCertsDir=" + pki.ca_file;

  RecordingClientFactory with_cert;
  auto c1 = client_from_string(reactor, target + ":certKey=" + pki.client_cert_file +
                                            ":privateKey=" + pki.client_key_file)
                ->connect(with_cert);
  wait_for(reactor, [&] { return with_cert.lost == 1 || with_cert.failed == 1; }, "mutual TLS");
  REQUIRE(with_cert.records.size() == 1);
  CHECK(with_cert.records[0].received == "torsion client");
  CHECK(names == std::vector<std::string>{"torsion client"});

  RecordingClientFactory without;
  auto c2 = client_from_string(reactor, target)->connect(without);
  wait_for(reactor, [&] { return without.lost == 1 || without.failed == 1; }, "the refusal");
  const auto& reason = without.failed ? without.failure : without.lost_reason;
  REQUIRE(reason);
  CHECK(reason->is(error::tls_failed));
  CHECK(names.size() == 1);  // no server protocol for the client without a certificate
  if (!without.records.empty()) CHECK(without.records[0].received.empty());

  // verifyClient=optional lets it in, with no certificate to show.
  auto optional_endpoint = server_from_string(
      reactor, server_string(pki.cert_file, pki.key_file) + ":caCertsDir=" + pki.ca_file +
                   ":verifyClient=optional");
  auto optional_port = optional_endpoint->listen(server);
  RecordingClientFactory anonymous;
  auto c3 = client_from_string(reactor, "ssl:127.0.0.1:" + std::to_string(optional_port->port()) +
                                            ":hostname=localhost:caCertsDir=" + pki.ca_file)
                ->connect(anonymous);
  wait_for(reactor, [&] { return anonymous.lost == 1 || anonymous.failed == 1; }, "optional");
  REQUIRE(anonymous.records.size() == 1);
  CHECK(anonymous.records[0].received == "(none)");
  port->stop_listening();
  optional_port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("bad ssl and tls descriptions name the parameter and the value") {
  register_tls_endpoints();
  TestPki pki;
  Reactor reactor;
  const std::string missing = pki.dir + "/missing.pem";
  const std::string empty_dir = pki.dir + "/empty";
  REQUIRE(::mkdir(empty_dir.c_str(), 0700) == 0);
  const std::string good = ":privateKey=" + pki.key_file + ":certKey=" + pki.cert_file;

  struct Case {
    std::string description;
    std::string parameter;
    std::string value;
  };
  SUBCASE("servers") {
    const Case cases[] = {
        {"ssl:443", "privateKey", ""},
        {"ssl:443:privateKey=" + missing, "privateKey", missing},
        {"ssl:443:privateKey=" + pki.dir, "privateKey", pki.dir},
        {"ssl:443:privateKey=" + pki.key_file + ":certKey=" + missing, "certKey", missing},
        {"ssl:443:privateKey=" + pki.key_file + ":certKey=" + pki.key_file, "certKey",
         pki.key_file},  // a key is not a certificate
        {"ssl:443:privateKey=" + pki.stranger_key_file + ":certKey=" + pki.cert_file,
         "privateKey", pki.stranger_key_file},  // the key does not match
        {"ssl:443" + good + ":extraCertChain=" + pki.key_file, "extraCertChain", pki.key_file},
        {"ssl:443" + good + ":extraCertChain=" + missing, "extraCertChain", missing},
        {"ssl:443" + good + ":backlog=0", "backlog", "0"},
        {"ssl:http" + good, "port", "http"},
        {"ssl:443" + good + ":interface=localhost", "interface", "localhost"},
        {"ssl:443" + good + ":alpn=h2,,x", "alpn", "h2,,x"},
        {"ssl:443" + good + ":sslmethod=TLSv1_METHOD", "sslmethod", "TLSv1_METHOD"},
        {"tls:443" + good, "type", "tls"},
        {"ssl:443" + good + ":caCertsDir=" + missing, "caCertsDir", missing},
        {"ssl:443" + good + ":caCertsDir=" + empty_dir, "caCertsDir", empty_dir},
        {"ssl:443" + good + ":caCertsDir=" + pki.key_file, "caCertsDir", pki.key_file},
        {"ssl:443" + good + ":caCertsDir=", "caCertsDir", ""},
        {"ssl:443" + good + ":caCertsDir=" + pki.ca_file + ":verifyClient=none", "caCertsDir",
         pki.ca_file},
        {"ssl:443" + good + ":caCertsDir=" + pki.ca_file + ":verifyClient=maybe", "verifyClient",
         "maybe"},
        {"ssl:443" + good + ":verifyClient=required", "verifyClient", "required"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.description);
      const auto e = error_of([&] { (void)server_from_string(reactor, c.description); });
      CHECK(e.parameter() == c.parameter);
      CHECK(e.value() == c.value);
      CHECK(std::string(e.what()).find("'" + c.parameter + "'") != std::string::npos);
    }
  }
  SUBCASE("clients") {
    const Case cases[] = {
        {"ssl:example.com", "port", ""},
        {"ssl:example.com:0", "port", "0"},
        {"ssl:example.com:443:caCertsDir=" + missing, "caCertsDir", missing},
        {"tls:example.com:443:trustRoots=" + empty_dir, "trustRoots", empty_dir},
        {"tls:example.com:443:trustRoots=" + pki.key_file, "trustRoots", pki.key_file},
        {"tls:example.com:443:caCertsDir=" + pki.ca_file, "caCertsDir", pki.ca_file},
        {"ssl:example.com:443:certificate=" + pki.cert_file, "certificate", pki.cert_file},
        {"ssl:example.com:443:privateKey=" + pki.key_file, "privateKey", pki.key_file},
        {"ssl:example.com:443:certKey=" + missing, "certKey", missing},
        {"tls:example.com:443:certificate=" + pki.cert_file + ":privateKey=" +
             pki.stranger_key_file,
         "privateKey", pki.stranger_key_file},
        {"tls:example.com:443:certificate=" + pki.cert_file, "certificate", pki.cert_file},
        {"ssl:example.com:443:verify=maybe", "verify", "maybe"},
        {"ssl:example.com:443:timeout=-1", "timeout", "-1"},
        {"ssl:example.com:443:hostname=", "hostname", ""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.description);
      const auto e = error_of([&] { (void)client_from_string(reactor, c.description); });
      CHECK(e.parameter() == c.parameter);
      CHECK(e.value() == c.value);
      CHECK(std::string(e.what()).find("'" + c.parameter + "'") != std::string::npos);
    }
  }
}

TEST_CASE("ssl and tls before register_tls_endpoints say what to call and what to link") {
  register_tls_endpoints();
  REQUIRE(unregister_server_endpoint("ssl"));
  REQUIRE(unregister_server_endpoint("tls"));
  REQUIRE(unregister_client_endpoint("ssl"));
  REQUIRE(unregister_client_endpoint("tls"));
  CHECK_FALSE(unregister_client_endpoint("tls"));
  Reactor reactor;
  const auto check = [](const EndpointError& e, const std::string& type) {
    CHECK(e.parameter() == "type");
    CHECK(e.value() == type);
    const std::string what = e.what();
    CHECK(what.find("torsion::register_tls_endpoints()") != std::string::npos);
    CHECK(what.find("transports/tls_endpoints.hpp") != std::string::npos);
    CHECK(what.find("torsion_tls") != std::string::npos);
    CHECK(what.find("torsion_tls_dep") != std::string::npos);
  };
  check(error_of([&] { (void)server_from_string(reactor, "ssl:443:privateKey=k.pem"); }), "ssl");
  check(error_of([&] { (void)client_from_string(reactor, "ssl:example.com:443"); }), "ssl");
  check(error_of([&] { (void)client_from_string(reactor, "tls:example.com:443"); }), "tls");
  // Other unknown types still list what is known.
  const auto other = error_of([&] { (void)client_from_string(reactor, "quic:example.com:443"); });
  CHECK(std::string(other.what()).find("register_tls_endpoints") == std::string::npos);

  register_tls_endpoints();
  const auto types = client_endpoint_types();
  CHECK(std::find(types.begin(), types.end(), "tls") != types.end());
  CHECK(client_from_string(reactor, "tls:example.com:443")->description() ==
        "tls:host=example.com:port=443:timeout=30:verify=true");
}
