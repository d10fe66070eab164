// Where a client connects from and to which family: TcpConnectOptions::bind (the
// bindAddress= of client endpoint strings) and TcpConnectOptions::family (the tcp6:
// endpoints). On 127.0.0.1; on ::1 only when this machine has it (else skipped, saying so).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "transports/endpoints.hpp"
#include "transports/tcp.hpp"
#include "tests/support/endpoint_error.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::recently_free_port;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// True when ::1 can be bound here (a container may have no IPv6 at all).
bool have_ipv6_loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Connects with `options` and waits for the outcome: the server's record of the
// connection when it was made, null when the attempt failed (client.failure says why).
Record* connect_and_wait(Reactor& reactor, RecordingFactory& server, RecordingClientFactory& client,
                         const std::string& host, int port, const TcpConnectOptions& options) {
  const std::size_t before = server.records.size();
  const int failed = client.failed;
  connect_tcp(reactor, host, port, client, options);
  REQUIRE(wait_for(reactor, [&] { return server.records.size() > before || client.failed > failed; },
                   "the connection or its failure"));
  return server.records.size() > before ? &server.records.back() : nullptr;
}

}  // namespace

TEST_CASE("bind: the server sees the port the client bound") {
  Reactor reactor;
  RecordingFactory server;
  Address peer;
  server.setup = [&](Record& r) { r.on_made = [&](Record& rr) { peer = rr.transport->get_peer(); }; };
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  // An explicit local port: one that was free a moment ago; if another process took it
  // meanwhile the bind fails with address_in_use, and another is tried.
  for (int attempt = 1;; ++attempt) {
    TcpConnectOptions options;
    options.bind = Address::ip("127.0.0.1", recently_free_port());
    if (connect_and_wait(reactor, server, client, "127.0.0.1", port->port(), options)) {
      CHECK(peer == *options.bind);
      REQUIRE(wait_for(reactor, [&] { return !client.records.empty(); }, "the client side"));
      CHECK(client.records.back().transport->get_host() == *options.bind);
      break;
    }
    REQUIRE(client.failure->cause() == std::errc::address_in_use);
    REQUIRE_MESSAGE(attempt < 5, "no free local port in 5 attempts");
  }
  // Port 0: the kernel picks the port, the address is the one given.
  TcpConnectOptions any_port;
  any_port.bind = Address::ip("127.0.0.1", 0);
  REQUIRE(connect_and_wait(reactor, server, client, "127.0.0.1", port->port(), any_port));
  CHECK(peer.host() == "127.0.0.1");
  CHECK(peer.port() != 0);
}

TEST_CASE("bind: a local port in use fails the attempt with address_in_use") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  TcpConnectOptions options;
  options.bind = Address::ip("127.0.0.1", static_cast<std::uint16_t>(port->port()));  // the listener's
  CHECK(connect_and_wait(reactor, server, client, "127.0.0.1", port->port(), options) == nullptr);
  REQUIRE(client.failure);
  CHECK(client.failure->cause() == std::errc::address_in_use);
  CHECK(client.failure->message().find("binding 127.0.0.1:" + std::to_string(port->port())) !=
        std::string::npos);
  CHECK(client.records.empty());
}

TEST_CASE("bind and family: only addresses of that family are tried") {
  Reactor reactor;
  RecordingFactory server;
  auto port = listen_tcp(reactor, 0, server, loopback());
  RecordingClientFactory client;
  TcpConnectOptions options;
  options.resolver = [](const std::string&) { return std::vector<std::string>{"::1", "127.0.0.1"}; };
  // An IPv4 bind address and a name with both families: connected over IPv4.
  options.bind = Address::ip("127.0.0.1", 0);
  REQUIRE(connect_and_wait(reactor, server, client, "dual.test", port->port(), options));
  CHECK(server.records.back().transport != nullptr);

  // No address of the family: lookup_failed, no connect at all (so ::1 above was not
  // tried either).
  options.resolver = [](const std::string&) { return std::vector<std::string>{"::1"}; };
  CHECK(connect_and_wait(reactor, server, client, "v6only.test", port->port(), options) == nullptr);
  CHECK(client.failure->kind() == error::lookup_failed);
  CHECK(client.failure->message().find("no IPv4 address for v6only.test") != std::string::npos);

  TcpConnectOptions v6;
  v6.family = Address::Family::ipv6;
  CHECK(connect_and_wait(reactor, server, client, "127.0.0.1", port->port(), v6) == nullptr);
  CHECK(client.failure->kind() == error::lookup_failed);
  CHECK(client.failure->message().find("no IPv6 address for 127.0.0.1") != std::string::npos);

  TcpConnectOptions bad;
  bad.bind = Address::ip("localhost", 0);  // names are not bound: numeric only
  CHECK_THROWS_AS(connect_tcp(reactor, "127.0.0.1", port->port(), client, bad), std::invalid_argument);
  bad.bind = Address::unix_socket("/tmp/x");
  CHECK_THROWS_AS(connect_tcp(reactor, "127.0.0.1", port->port(), client, bad), std::invalid_argument);
  bad.bind = Address::ip("127.0.0.1", 0);
  bad.family = Address::Family::ipv6;
  CHECK_THROWS_AS(connect_tcp(reactor, "127.0.0.1", port->port(), client, bad), std::invalid_argument);
  bad = {};
  bad.family = Address::Family::unix_socket;
  CHECK_THROWS_AS(connect_tcp(reactor, "127.0.0.1", port->port(), client, bad), std::invalid_argument);
}

TEST_CASE("endpoint strings: bindAddress= and tcp6:") {
  Reactor reactor;
  RecordingFactory server;
  Address peer;
  server.setup = [&](Record& r) { r.on_made = [&](Record& rr) { peer = rr.transport->get_peer(); }; };
  auto port = listen_tcp(reactor, 0, server, loopback());
  const std::string where =
      "tcp:127.0.0.1:" + std::to_string(port->port()) + ":bindAddress=127.0.0.1";
  auto endpoint = client_from_string(reactor, where);
  CHECK(endpoint->description() == "tcp:host=127.0.0.1:port=" + std::to_string(port->port()) +
                                       ":timeout=30:bindAddress=127.0.0.1");
  CHECK(client_from_string(reactor, endpoint->description())->description() == endpoint->description());
  RecordingClientFactory client;
  endpoint->connect(client);
  REQUIRE(wait_for(reactor, [&] { return !server.records.empty(); }, "the connection"));
  CHECK(peer.host() == "127.0.0.1");

  using test::error_of;
  struct Case {
    const char* text;
    const char* parameter;
  };
  for (auto c : {Case{"tcp:127.0.0.1:80:bindAddress=localhost", "bindAddress"},
                 Case{R"(tcp:127.0.0.1:80:bindAddress=\:\:1)", "bindAddress"},
                 Case{"tcp6:127.0.0.1:80", "host"},
                 Case{R"(tcp6:\:\:1:80:bindAddress=127.0.0.1)", "bindAddress"},
                 Case{"tcp6:example.com:0", "port"}}) {
    CAPTURE(c.text);
    CHECK(error_of([&] { (void)client_from_string(reactor, c.text); }).parameter() == c.parameter);
  }
  CHECK(error_of([&] { (void)server_from_string(reactor, "tcp6:80:interface=127.0.0.1"); })
            .parameter() == "interface");
  CHECK(server_from_string(reactor, "tcp6:8080")->description() ==
        R"(tcp6:8080:interface=\:\::backlog=511)");
  CHECK(client_from_string(reactor, R"(tcp6:host=\:\:1:port=80:bindAddress=\:\:1)")->description() ==
        R"(tcp6:host=\:\:1:port=80:timeout=30:bindAddress=\:\:1)");
  // A name is allowed: only its IPv6 addresses are tried.
  CHECK(client_from_string(reactor, "tcp6:example.com:443")->description() ==
        "tcp6:host=example.com:port=443:timeout=30");
}

TEST_CASE("tcp6: a server and a client on ::1, with bindAddress") {
  if (!have_ipv6_loopback()) {
    MESSAGE("skipped: ::1 cannot be bound on this machine (no IPv6 loopback)");
    return;
  }
  Reactor reactor;
  RecordingFactory server;
  Address peer, host;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      peer = rr.transport->get_peer();
      host = rr.transport->get_host();
      rr.transport->write("six");
    };
  };
  auto port = server_from_string(reactor, R"(tcp6:0:interface=\:\:1)")->listen(server);
  REQUIRE(port->port() > 0);
  RecordingClientFactory client;
  client_from_string(reactor, R"(tcp6:\:\:1:)" + std::to_string(port->port()) + R"(:bindAddress=\:\:1)")
      ->connect(client);
  REQUIRE(wait_for(reactor, [&] { return !client.records.empty() && client.records[0].received == "six"; },
                   "the greeting over ::1"));
  CHECK(peer.family() == Address::Family::ipv6);
  CHECK(peer.host() == "::1");
  CHECK(host == Address::ip("::1", static_cast<std::uint16_t>(port->port())));
  // A name with both families, through tcp6's family rule: only ::1 is tried.
  TcpConnectOptions v6;
  v6.family = Address::Family::ipv6;
  v6.resolver = [](const std::string&) { return std::vector<std::string>{"127.0.0.1", "::1"}; };
  connect_tcp(reactor, "dual.test", port->port(), client, v6);
  REQUIRE(wait_for(reactor, [&] { return server.records.size() == 2; }, "the second connection"));
  CHECK(peer.host() == "::1");
}
