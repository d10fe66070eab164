// docs/deploying.md's snippets: a server that takes its socket from a description
// ("systemd:web" under systemd, "tcp:8080" by hand) and tells systemd when it is ready;
// a socket made by other code, adopted; a client connection that starts with a PROXY
// header. Its test cases live here.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "protocols/proxy_header_writer.hpp"
#include "protocols/proxy_protocol.hpp"
#include "transports/adopt.hpp"
#include "transports/endpoints.hpp"
#include "transports/systemd.hpp"
#include "transports/tcp.hpp"

namespace docs {
namespace {

class Echo : public torsion::Protocol {
 public:
  void data_received(std::string_view data) override { transport().write(data); }
};

// Runs an echo server on `where` until a shutdown; returns the port it served.
int serve(torsion::Reactor& reactor, const std::string& where) {
  auto factory = torsion::make_factory<Echo>();
  // [snippet:serve]
  // where: "systemd:web" under a .socket unit, "tcp:8080:interface=127.0.0.1" by hand
  auto port = torsion::server_from_string(reactor, where)->listen(factory);
  torsion::notify_systemd_ready(reactor);  // READY=1 now, STOPPING=1 when shutdown starts
  reactor.run();  // SIGTERM: stop accepting, let connections finish (shutdown()), return
  // [end]
  return port->port();
}

// A listening socket made with plain socket(2) calls, then served by torsion.
std::uint16_t adopt_raw_socket(torsion::Reactor& reactor, torsion::Factory& factory) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(fd, 128);
  // [snippet:adopt]
  auto port = torsion::adopt_listening_socket(reactor, fd, factory);  // now torsion's fd
  // [end]
  return port->port();
}

// Connects to a backend behind ProxyProtocolFactory on `backend_port` as a proxy would,
// with a header naming the client; returns what the backend answered.
std::string through_header(torsion::Reactor& reactor, int backend_port) {
  std::string answer;
  struct Reader : torsion::Protocol {
    std::string& got;
    explicit Reader(std::string& g) : got(g) {}
    void data_received(std::string_view d) override { got.append(d); }
  };
  torsion::FunctionFactory<torsion::ClientFactory> backend_side(
      [&](const torsion::Address&) { return std::make_unique<Reader>(answer); });
  // [snippet:send-proxy]
  // In a proxy: the accepted connection's transport().get_peer() and get_host().
  auto header = torsion::make_proxy_header(torsion::Address::ip("192.0.2.7", 4242),
                                           torsion::Address::ip("198.51.100.1", 443));
  torsion::SendProxyHeaderFactory sender(backend_side, header);  // v2; version 1: a third argument
  torsion::connect_tcp(reactor, "127.0.0.1", backend_port, sender);
  // [end]
  reactor.run_until([&] { return answer.find('\n') != std::string::npos; }, 20);
  return answer;
}

}  // namespace
}  // namespace docs

TEST_CASE("deploying: serve from a description, then shut down") {
  torsion::Reactor reactor;
  reactor.set_handle_signals(false);
  reactor.shutdown();  // run() proceeds with it at once
  CHECK(docs::serve(reactor, "tcp:0:interface=127.0.0.1") > 0);
}

TEST_CASE("deploying: an adopted socket serves") {
  torsion::Reactor reactor;
  auto echo = torsion::make_factory<docs::Echo>();
  const auto port = docs::adopt_raw_socket(reactor, echo);
  REQUIRE(port > 0);
  std::string got;
  struct Ping : torsion::Protocol {
    std::string& got;
    explicit Ping(std::string& g) : got(g) {}
    void connection_made() override { transport().write("ping"); }
    void data_received(std::string_view d) override {
      got.append(d);
      if (got.size() == 4) transport().lose_connection();
    }
  };
  torsion::FunctionFactory<torsion::ClientFactory> ping(
      [&](const torsion::Address&) { return std::make_unique<Ping>(got); });
  torsion::connect_tcp(reactor, "127.0.0.1", port, ping);
  CHECK(reactor.run_until([&] { return got == "ping" && reactor.connection_count() == 0; }, 20));
}

TEST_CASE("deploying: a client connection starts with a PROXY header") {
  torsion::Reactor reactor;
  struct Who : torsion::Protocol {
    void connection_made() override {
      transport().write(transport().get_peer().to_string() + "\n");
    }
  };
  auto who = torsion::make_factory<Who>();
  torsion::ProxyProtocolFactory behind(who);
  torsion::TcpListenOptions local;
  local.interface = "127.0.0.1";
  auto port = torsion::listen_tcp(reactor, 0, behind, local);
  CHECK(docs::through_header(reactor, port->port()) == "192.0.2.7:4242\n");
}
