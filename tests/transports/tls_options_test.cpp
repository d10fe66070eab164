// TLS operators' options with real handshakes on 127.0.0.1: session resumption (tickets,
// the server's cache, the client's reuse), certificate reload without a restart (on one
// port and on a ReactorPool), protocol versions against openssl s_client, and the errors
// bad settings raise.

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/reactor_pool.hpp"
#include "tests/support/openssl_peers.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/tls_fixture.hpp"
#include "tests/support/wait.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::client_options;
using torsion::test::echo_setup;
using torsion::test::encrypted_key;
using torsion::test::OpenSslClient;
using torsion::test::read_file;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::s_client_command;
using torsion::test::server_options;
using torsion::test::TestPki;
using torsion::test::wait_for;

namespace {

// What one connection saw: the client's and the server's tls_info.
struct Seen {
  std::optional<TlsInfo> client, server;
  bool failed = false;
};

// A server on 127.0.0.1 whose connections echo and note their tls_info.
struct InfoServer {
  Reactor& reactor;
  RecordingFactory factory;
  std::vector<std::optional<TlsInfo>> infos;
  std::shared_ptr<ListeningPort> port;
  InfoServer(Reactor& r, std::shared_ptr<const TlsServerContext> context) : reactor(r) {
    factory.setup = [this](Record& rec) {
      echo_setup(rec);
      rec.on_made = [this](Record& rr) { infos.push_back(tls_info(*rr.transport)); };
    };
    TlsListenOptions lo;
    lo.interface = "127.0.0.1";
    port = listen_ssl(reactor, 0, factory, std::move(context), lo);
  }
};

// One client connection to `port` with `cctx`: "ping", its echo, a clean close.
Seen round_trip(InfoServer& server, const TlsClientContext& cctx) {
  RecordingClientFactory client;
  Seen seen;
  client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      seen.client = tls_info(*rr.transport);
      rr.transport->write("ping");
    };
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received == "ping") rr.transport->lose_connection();
    };
  };
  const std::size_t before = server.factory.records.size();
  auto connector = connect_ssl(server.reactor, "127.0.0.1", server.port->port(), client, cctx);
  wait_for(server.reactor, [&] { return client.lost == 1 || client.failed == 1; }, "the echo");
  seen.failed = client.failed == 1;
  if (!seen.failed) {
    wait_for(server.reactor, [&] {
      return server.factory.records.size() == before + 1 && server.factory.records.back().done();
    }, "the server's side to close");
    REQUIRE(server.infos.size() == before + 1);
    seen.server = server.infos.back();
  }
  return seen;
}

// The pool tests' client factory: builds protocols with `build`; a failed attempt calls
// `failed` (it counts as ended, and the test's chain of connections goes on).
class ChainFactory final : public ClientFactory {
 public:
  ChainFactory(std::function<std::unique_ptr<Protocol>()> build, std::function<void()> failed)
      : build_(std::move(build)), failed_(std::move(failed)) {}
  std::unique_ptr<Protocol> build_protocol(const Address&) override { return build_(); }
  void client_connection_failed(Connector&, const Reason&) override { failed_(); }

 private:
  std::function<std::unique_ptr<Protocol>()> build_;
  std::function<void()> failed_;
};

}  // namespace

TEST_CASE("tls session resumption: a client that reuses its session skips the certificates") {
  TestPki pki;
  Reactor reactor;
  TlsServerOptions sopt = server_options(pki);
  TlsClientOptions copt = client_options(pki);
  copt.reuse_sessions = true;
  SUBCASE("TLS 1.3 tickets") {}
  SUBCASE("TLS 1.2 tickets") { sopt.max_version = TlsVersion::tls1_2; }
  SUBCASE("TLS 1.2 session ids from the server's cache, no tickets") {
    sopt.max_version = TlsVersion::tls1_2;
    sopt.session_tickets = false;
  }
  SUBCASE("TLS 1.3 without tickets: stateful, from the server's cache") {
    sopt.session_tickets = false;
  }
  InfoServer server(reactor, std::make_shared<const TlsServerContext>(sopt));
  TlsClientContext cctx(copt);
  const Seen first = round_trip(server, cctx);
  REQUIRE(!first.failed);
  REQUIRE(first.client);
  REQUIRE(first.server);
  CHECK(!first.client->resumed);
  CHECK(!first.server->resumed);
  CHECK(first.client->peer_common_name == "localhost");
  for (int i = 0; i < 2; ++i) {  // each resumption hands out a session to resume next
    const Seen again = round_trip(server, cctx);
    REQUIRE(!again.failed);
    REQUIRE(again.client);
    REQUIRE(again.server);
    CHECK(again.client->resumed);
    CHECK(again.server->resumed);
    CHECK(again.client->version == first.client->version);
    CHECK(again.client->peer_common_name == "localhost");  // the session's certificate
  }
  // A client that does not ask to reuse sessions never resumes.
  TlsClientContext fresh(client_options(pki));
  for (int i = 0; i < 2; ++i) {
    const Seen s = round_trip(server, fresh);
    REQUIRE(s.client);
    CHECK(!s.client->resumed);
  }
  server.port->stop_listening();
}

namespace {

// start_tls at once on both sides; the client writes "ping", notes tls_info on the echo
// and closes.
struct StartTlsEcho final : Protocol {
  const TlsServerContext* server = nullptr;
  const TlsClientContext* client = nullptr;
  std::optional<TlsInfo>* info = nullptr;
  void connection_made() override {
    if (server) {
      start_tls(transport(), *server);
      return;
    }
    start_tls(transport(), *client, "localhost");
    transport().write("ping");
  }
  void data_received(std::string_view d) override {
    if (server) {
      transport().write(d);
      return;
    }
    *info = tls_info(transport());
    transport().lose_connection();
  }
};

}  // namespace

TEST_CASE("tls session resumption over start_tls") {
  TestPki pki;
  Reactor reactor;
  TlsServerContext sctx(server_options(pki));
  TlsClientOptions copt = client_options(pki);
  copt.reuse_sessions = true;
  TlsClientContext cctx(copt);
  FunctionFactory<Factory> sfactory([&](const Address&) {
    auto p = std::make_unique<StartTlsEcho>();
    p->server = &sctx;
    return with_start_tls(std::move(p));
  });
  TcpListenOptions lo;
  lo.interface = "127.0.0.1";
  auto port = listen_tcp(reactor, 0, sfactory, lo);
  std::vector<bool> resumed;
  for (int i = 0; i < 2; ++i) {
    std::optional<TlsInfo> info;
    FunctionFactory<ClientFactory> cfactory([&](const Address&) {
      auto p = std::make_unique<StartTlsEcho>();
      p->client = &cctx;
      p->info = &info;
      return with_start_tls(std::move(p));
    });
    auto connector = connect_tcp(reactor, "127.0.0.1", port->port(), cfactory);
    wait_for(reactor, [&] { return info.has_value() && reactor.connection_count() == 0; },
             "the STARTTLS echo");
    resumed.push_back(info->resumed);
  }
  CHECK(resumed == std::vector<bool>{false, true});
  port->stop_listening();
}

TEST_CASE("tls session resumption off on the server: every handshake is full") {
  TestPki pki;
  Reactor reactor;
  TlsServerOptions sopt = server_options(pki);
  sopt.session_tickets = false;
  sopt.session_cache_size = 0;
  SUBCASE("TLS 1.3") {}
  SUBCASE("TLS 1.2") { sopt.max_version = TlsVersion::tls1_2; }
  InfoServer server(reactor, std::make_shared<const TlsServerContext>(sopt));
  TlsClientOptions copt = client_options(pki);
  copt.reuse_sessions = true;
  TlsClientContext cctx(copt);
  for (int i = 0; i < 3; ++i) {
    const Seen s = round_trip(server, cctx);
    REQUIRE(!s.failed);
    REQUIRE(s.server);
    CHECK(!s.server->resumed);
  }
  server.port->stop_listening();
  TlsServerOptions bad = server_options(pki);
  bad.session_lifetime = -1;
  CHECK_THROWS_WITH_AS(TlsServerContext{bad}, doctest::Contains("session_lifetime"),
                       std::invalid_argument);
}

TEST_CASE("tls session resumption interop: openssl s_client reports Reused") {
  TestPki pki;
  Reactor reactor;
  InfoServer server(reactor, std::make_shared<const TlsServerContext>(server_options(pki)));
  const std::string session_file = pki.dir + "/session.pem";
  // s_client without -quiet prints "New, TLSv1.3, ..." or "Reused, TLSv1.3, ...".
  const auto run = [&](const std::string& flag) {
    auto command = s_client_command(pki, server.port->port(), {flag, session_file});
    std::erase(command, std::string("-quiet"));
    OpenSslClient s_client("ping from s_client");
    auto p = spawn_process(reactor, s_client, command);
    p->write("ping from s_client\n");
    wait_for(reactor, [&] { return s_client.status.has_value(); }, "s_client to finish");
    CHECK(s_client.status->success());
    return s_client.out;
  };
  const std::string first = run("-sess_out");
  CHECK(first.find("New, TLSv1.3") != std::string::npos);
  const std::string second = run("-sess_in");
  CHECK(second.find("Reused, TLSv1.3") != std::string::npos);
  wait_for(reactor, [&] { return server.infos.size() == 2; }, "both connections");
  REQUIRE(server.infos[0]);
  REQUIRE(server.infos[1]);
  CHECK(!server.infos[0]->resumed);
  CHECK(server.infos[1]->resumed);
  server.port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to end");
}

TEST_CASE("tls reload: new connections get the new certificate, open ones keep theirs") {
  TestPki pki;
  Reactor reactor;
  auto context = std::make_shared<TlsServerContext>(server_options(pki));
  InfoServer server(reactor, context);
  TlsClientOptions copt = client_options(pki);
  copt.verify_peer = false;  // the certificates name different hosts; tls_info tells them
  copt.reuse_sessions = true;
  TlsClientContext cctx(copt);

  // A connection made before the reload, kept open across it.
  RecordingClientFactory open_client;
  std::optional<TlsInfo> open_info;
  open_client.setup = [&](Record& r) { r.on_made = [&](Record& rr) { open_info = tls_info(*rr.transport); }; };
  auto open_connector = connect_ssl(reactor, "127.0.0.1", server.port->port(), open_client, cctx);
  wait_for(reactor, [&] { return open_client.records.size() == 1 || open_client.failed == 1; },
           "the first connection");
  REQUIRE(open_info);
  CHECK(open_info->peer_common_name == "localhost");
  // Under TLS 1.3 the client is done first: the server's side follows.
  wait_for(reactor, [&] { return server.factory.records.size() == 1; }, "the server's side");

  // A reload that fails changes nothing.
  TlsServerOptions mismatched = server_options(pki);
  mismatched.certificate_chain_file = pki.other_cert_file;  // with the localhost key
  CHECK_THROWS_WITH_AS(context->reload(mismatched), doctest::Contains("does not match"),
                       std::invalid_argument);
  TlsServerOptions missing = server_options(pki);
  missing.certificate_chain_file = pki.dir + "/nonexistent.pem";
  CHECK_THROWS_WITH_AS(context->reload(missing), doctest::Contains("nonexistent.pem"),
                       std::invalid_argument);
  TlsClientContext no_reuse(client_options(pki));
  Seen s = round_trip(server, no_reuse);
  REQUIRE(s.client);
  CHECK(s.client->peer_common_name == "localhost");

  // The renewed certificate: every connection from now on presents it.
  TlsServerOptions renewed = server_options(pki);
  renewed.certificate_chain_file = pki.other_cert_file;
  renewed.private_key_file = pki.other_key_file;
  context->reload(renewed);
  TlsClientContext other_client(copt);
  s = round_trip(server, other_client);
  REQUIRE(s.client);
  CHECK(s.client->peer_common_name == "other.test");
  CHECK(!s.client->resumed);
  // A session from before the reload still resumes (the ticket keys were kept).
  s = round_trip(server, cctx);
  REQUIRE(s.client);
  CHECK(s.client->resumed);

  // The connection opened before still runs on its own configuration.
  REQUIRE(open_client.records.size() == 1);
  Record& open = open_client.records[0];
  open.on_data = [](Record& rr, std::string_view) {
    if (rr.received == "still here") rr.transport->lose_connection();
  };
  open.transport->write("still here");
  wait_for(reactor, [&] { return open.done(); }, "the old connection's echo and close");
  CHECK(open.received == "still here");
  CHECK(open.reason->clean());
  server.port->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to end");
}

TEST_CASE("tls reload on a ReactorPool while its threads accept") {
  constexpr int kClients = 16;
  TestPki pki;
  auto context = std::make_shared<TlsServerContext>(server_options(pki));
  ReactorPool pool(2);
  // build_protocol runs on the pool's threads: a thread-safe echo.
  class Echo final : public Protocol {
    void data_received(std::string_view d) override { transport().write(d); }
  };
  std::atomic<int> built{0};
  FunctionFactory<> factory([&](const Address&) {
    ++built;
    return std::make_unique<Echo>();
  });
  TlsListenOptions lo;
  lo.interface = "127.0.0.1";
  auto ports = listen_ssl_pool(pool, 0, factory, context, lo);
  REQUIRE(ports.size() == 2);
  pool.start();
  TlsServerOptions renewed = server_options(pki);
  renewed.certificate_chain_file = pki.other_cert_file;
  renewed.private_key_file = pki.other_key_file;
  {
    Reactor reactor;
    TlsClientOptions copt = client_options(pki);
    copt.verify_peer = false;
    TlsClientContext cctx(copt);
    // Clients connect while this thread reloads: each sees one certificate or the other,
    // whole; the ones started after the reload see the new one.
    const auto clients = [&](std::deque<RecordingClientFactory>& out,
                             std::vector<std::shared_ptr<Connector>>& connectors,
                             std::vector<std::string>& names) {
      for (int i = 0; i < kClients; ++i) {
        auto& c = out.emplace_back();
        c.setup = [&names](Record& r) {
          r.on_made = [&names](Record& rr) {
            const auto info = tls_info(*rr.transport);
            names.push_back(info ? info->peer_common_name : "?");
            rr.transport->write("x");
          };
          r.on_data = [](Record& rr, std::string_view) { rr.transport->lose_connection(); };
        };
        connectors.push_back(connect_ssl(reactor, "127.0.0.1", ports[0]->port(), c, cctx));
      }
    };
    std::deque<RecordingClientFactory> racing, after;
    std::vector<std::shared_ptr<Connector>> connectors;
    std::vector<std::string> racing_names, after_names;
    clients(racing, connectors, racing_names);
    reactor.run_until([] { return false; }, 0.01);  // some handshakes are under way
    context->reload(renewed);
    const auto all_done = [](std::deque<RecordingClientFactory>& cs) {
      for (auto& c : cs)
        if (c.lost + c.failed == 0) return false;
      return true;
    };
    wait_for(reactor, [&] { return all_done(racing); }, "the racing clients");
    clients(after, connectors, after_names);
    wait_for(reactor, [&] { return all_done(after); }, "the clients after the reload");
    REQUIRE(racing_names.size() == kClients);
    for (const auto& n : racing_names) CHECK((n == "localhost" || n == "other.test"));
    REQUIRE(after_names.size() == kClients);
    for (const auto& n : after_names) CHECK(n == "other.test");
    for (auto& c : after) CHECK(c.failed == 0);
  }
  pool.stop();
  pool.join();
  CHECK(built.load() == 2 * kClients);
}

TEST_CASE("tls versions interop: openssl s_client outside the server's range is refused") {
  TestPki pki;
  Reactor reactor;
  struct Case {
    TlsVersion min, max;
    const char* client_flag;
    bool accepted;
  };
  const Case cases[] = {
      {TlsVersion::tls1_2, TlsVersion::tls1_2, "-tls1_3", false},
      {TlsVersion::tls1_3, TlsVersion::tls1_3, "-tls1_2", false},
      {TlsVersion::tls1_2, TlsVersion::tls1_2, "-tls1_2", true},
      {TlsVersion::tls1_3, TlsVersion::tls1_3, "-tls1_3", true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.client_flag);
    CAPTURE(static_cast<int>(c.max));
    std::vector<std::string> failures;
    TlsServerOptions sopt = server_options(pki);
    sopt.min_version = c.min;
    sopt.max_version = c.max;
    sopt.handshake_failed = [&](const Address&, const Reason& why) {
      failures.push_back(why.message());
    };
    InfoServer server(reactor, std::make_shared<const TlsServerContext>(sopt));
    OpenSslClient s_client("ping from s_client");
    auto p = spawn_process(reactor, s_client,
                           s_client_command(pki, server.port->port(), {c.client_flag}));
    p->write("ping from s_client\n");
    wait_for(reactor, [&] { return s_client.status.has_value(); }, "s_client to finish");
    if (c.accepted) {
      CHECK(s_client.status->success());
      CHECK(s_client.out == "ping from s_client\n");
      REQUIRE(server.infos.size() == 1);
      REQUIRE(server.infos[0]);
      CHECK(server.infos[0]->version == (c.max == TlsVersion::tls1_3 ? "TLSv1.3" : "TLSv1.2"));
    } else {
      CHECK(!s_client.status->success());
      wait_for(reactor, [&] { return failures.size() == 1; }, "the server's handshake_failed");
      CHECK(failures[0].find("unsupported protocol") != std::string::npos);
      CHECK(server.infos.empty());
    }
    server.port->stop_listening();
    wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to end");
  }
}

TEST_CASE("tls bad settings throw an exception that names the problem") {
  TestPki pki;
  TlsServerOptions o = server_options(pki);
  o.private_key_file = pki.other_key_file;
  CHECK_THROWS_WITH_AS(TlsServerContext{o}, doctest::Contains("does not match the certificate"),
                       std::invalid_argument);
  o = server_options(pki);
  o.private_key_file.clear();
  o.private_key_pem = encrypted_key(pki.key_file, "right");
  o.private_key_passphrase = "wrong";
  CHECK_THROWS_WITH_AS(TlsServerContext{o}, doctest::Contains("passphrase"),
                       std::invalid_argument);
  o.private_key_pem.clear();
  o.private_key_file = pki.dir + "/encrypted.key";
  if (FILE* f = std::fopen(o.private_key_file.c_str(), "w")) {
    const std::string pem = encrypted_key(pki.key_file, "right");
    std::fwrite(pem.data(), 1, pem.size(), f);
    std::fclose(f);
  }
  CHECK_THROWS_WITH_AS(TlsServerContext{o}, doctest::Contains("passphrase"),
                       std::invalid_argument);
  o.private_key_passphrase = "right";
  CHECK_NOTHROW(TlsServerContext{o});
  o = server_options(pki);
  o.cipher_list = "ECDHE-RSA-AES128-GCM-SHA256:NOT-A-CIPHER-AT-ALL";  // one known is enough
  CHECK_NOTHROW(TlsServerContext{o});
  o.cipher_list = "NOT-A-CIPHER-AT-ALL";
  CHECK_THROWS_WITH_AS(TlsServerContext{o}, doctest::Contains("cipher_list 'NOT-A-CIPHER-AT-ALL'"),
                       std::invalid_argument);
  TlsClientOptions c = client_options(pki);
  c.cipher_suites = "TLS_NOT_A_SUITE";
  CHECK_THROWS_WITH_AS(TlsClientContext{c}, doctest::Contains("cipher_suites 'TLS_NOT_A_SUITE'"),
                       std::invalid_argument);
  c = client_options(pki);
  c.certificate_pem = read_file(pki.client_cert_file);
  c.private_key_pem = read_file(pki.key_file);  // the server's key
  CHECK_THROWS_WITH_AS(TlsClientContext{c}, doctest::Contains("does not match the certificate"),
                       std::invalid_argument);
}

TEST_CASE("tls clients on two threads share one context's sessions") {
  constexpr int kRounds = 6;  // connections one after another on each client thread
  TestPki pki;
  Reactor reactor;  // the server's, on this thread
  InfoServer server(reactor, std::make_shared<const TlsServerContext>(server_options(pki)));
  TlsClientOptions copt = client_options(pki);
  copt.reuse_sessions = true;
  const TlsClientContext cctx(copt);
  std::atomic<int> ended{0}, resumed{0}, failed{0};
  // Each client thread connects, echoes "x", closes and connects again, kRounds times.
  struct Chain {
    Reactor* reactor = nullptr;
    int left = kRounds;
    std::unique_ptr<ClientFactory> factory;
    std::vector<std::shared_ptr<Connector>> connectors;
  };
  class Client final : public Protocol {
   public:
    Client(std::atomic<int>& resumed, std::function<void()> next)
        : resumed_(resumed), next_(std::move(next)) {}
    void connection_made() override {
      if (const auto info = tls_info(transport()); info && info->resumed) ++resumed_;
      transport().write("x");
    }
    void data_received(std::string_view) override { transport().lose_connection(); }
    void connection_lost(const Reason&) override { next_(); }

   private:
    std::atomic<int>& resumed_;
    std::function<void()> next_;
  };
  ReactorPool pool(2);
  std::deque<Chain> chains(2);
  const std::uint16_t port = server.port->port();
  std::function<void(Chain&)> connect = [&](Chain& c) {
    if (c.left-- == 0) return;
    c.connectors.push_back(connect_ssl(*c.reactor, "127.0.0.1", port, *c.factory, cctx));
  };
  for (std::size_t i = 0; i < 2; ++i) {
    Chain& c = chains[i];
    c.reactor = &pool.reactor(i);
    c.factory = std::make_unique<ChainFactory>(
        [&]() -> std::unique_ptr<Protocol> {
          return std::make_unique<Client>(resumed, [&] {
            ++ended;
            connect(c);
          });
        },
        [&] {
          ++failed;
          ++ended;
          connect(c);
        });
    connect(c);  // before start(): the pool's threads then own them
  }
  pool.start();
  wait_for(reactor, [&] { return ended.load() == 2 * kRounds; }, "every client connection");
  pool.stop();
  pool.join();
  CHECK(failed.load() == 0);
  // Only a thread's first connection can miss a session (both may start before either has
  // one); every later one resumes.
  CHECK(resumed.load() >= 2 * kRounds - 2);
  server.port->stop_listening();
}
