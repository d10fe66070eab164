#include "transports/udp.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/settle.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

UdpListenOptions loopback() {
  UdpListenOptions o;
  o.interface = "127.0.0.1";
  return o;
}

// Records every event; echoes when asked to.
struct Recorder : DatagramProtocol {
  bool echo = false;
  int started = 0;
  int stopped = 0;
  int refused = 0;
  std::vector<std::string> datagrams;
  std::vector<Address> senders;
  std::vector<Reason> errors;

  void started_listening() override {
    CHECK(stopped == 0);
    ++started;
  }
  void datagram_received(std::string_view data, const Address& from) override {
    CHECK(started == 1);
    datagrams.emplace_back(data);
    senders.push_back(from);
    if (echo) transport().write(data, from);
  }
  void connection_refused() override { ++refused; }
  void error_received(const Reason& reason) override { errors.push_back(reason); }
  void stopped_listening() override {
    CHECK(started == 1);
    ++stopped;
  }
};

int get_int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

}  // namespace

TEST_CASE("udp echo round trip and addresses") {
  Reactor reactor;
  Recorder server;
  server.echo = true;
  auto port = listen_udp(reactor, 0, server, loopback());
  CHECK(port->port() != 0);
  CHECK(port->get_host().host() == "127.0.0.1");
  CHECK(port->listening());

  Recorder client;
  auto cport = listen_udp(reactor, 0, client, loopback());
  wait_for(reactor, [&] { return client.started == 1 && server.started == 1; }, "started");
  cport->write("ping", Address::ip("127.0.0.1", port->port()));
  cport->write("pong", Address::ip("127.0.0.1", port->port()));
  wait_for(reactor, [&] { return client.datagrams.size() == 2; }, "both echoes");
  CHECK(client.datagrams == std::vector<std::string>{"ping", "pong"});
  CHECK(server.senders[0] == cport->get_host());
  CHECK(client.senders[0] == port->get_host());

  port->stop_listening();
  cport->stop_listening();
  CHECK_FALSE(port->listening());
  wait_for(reactor, [&] { return server.stopped == 1 && client.stopped == 1; }, "stopped");
  port->stop_listening();  // idempotent
  test::settle(reactor);   // a second stop notification would be queued by now
  CHECK(server.stopped == 1);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("udp the largest datagram arrives whole and a larger one is a clear error") {
  Reactor reactor;
  Recorder server;
  auto port = listen_udp(reactor, 0, server, loopback());
  Recorder client;
  auto cport = listen_udp(reactor, 0, client, loopback());
  const auto max = cport->max_datagram_size();
  CHECK(max == 65507);
  const std::string big(max, 'x');
  cport->write(big, port->get_host());
  wait_for(reactor, [&] { return server.datagrams.size() == 1; }, "the big datagram");
  CHECK(server.datagrams[0].size() == max);
  std::string message;
  try {
    cport->write(std::string(max + 1, 'y'), port->get_host());
  } catch (const std::length_error& e) {
    message = e.what();
  }
  CHECK(message.find("65508") != std::string::npos);
  CHECK(message.find("65507") != std::string::npos);
  port->stop_listening();
  cport->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}

TEST_CASE("udp connected endpoint hears connection_refused on ICMP port unreachable") {
  Reactor reactor;
  Recorder gone;
  auto closed = listen_udp(reactor, 0, gone, loopback());
  const Address dead = closed->get_host();
  closed->stop_listening();
  wait_for(reactor, [&] { return gone.stopped == 1; }, "closed port");

  Recorder client;
  auto cport = listen_udp(reactor, 0, client, loopback());
  cport->connect(dead);
  CHECK(cport->get_peer() == dead);
  CHECK_THROWS_AS(cport->write("x", Address::ip("127.0.0.1", 9)), std::logic_error);
  cport->write("anyone there?");
  wait_for(reactor, [&] { return client.refused >= 1; }, "connection_refused");
  CHECK(client.errors.empty());
  CHECK(gone.started == 1);  // stopped before it started: both events, in order
  CHECK(cport->listening());  // refusal does not close the endpoint
  cport->stop_listening();
  wait_for(reactor, [&] { return client.stopped == 1; }, "stopped");
}

TEST_CASE("udp connected endpoint talks to its peer only") {
  Reactor reactor;
  Recorder server;
  server.echo = true;
  auto port = listen_udp(reactor, 0, server, loopback());
  Recorder stranger;
  auto sport = listen_udp(reactor, 0, stranger, loopback());
  Recorder client;
  auto cport = listen_udp(reactor, 0, client, loopback());
  cport->connect(port->get_host());
  sport->write("from a stranger", cport->get_host());
  cport->write("hello");
  wait_for(reactor, [&] { return client.datagrams.size() == 1; }, "the echo");
  CHECK(client.datagrams[0] == "hello");
  // A sentinel: the stranger's datagram left before "hello", so had connect let it in it
  // would be in the client's queue ahead of this second echo.
  cport->write("sentinel");
  wait_for(reactor, [&] { return client.datagrams.size() >= 2; }, "the sentinel's echo");
  CHECK(client.datagrams == std::vector<std::string>{"hello", "sentinel"});
  CHECK_THROWS_AS(Recorder().transport(), std::logic_error);
  CHECK_THROWS_AS(port->write("x"), std::logic_error);  // not connected
  CHECK_THROWS_AS(port->write("x", Address::ip("localhost", 1)), std::invalid_argument);
  CHECK_THROWS_AS(port->write("x", Address::ip("::1", 1)), std::invalid_argument);
  for (auto* p : {&port, &sport, &cport}) (*p)->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}

TEST_CASE("udp broadcast is opt-in") {
  Reactor reactor;
  Recorder client;
  auto cport = listen_udp(reactor, 0, client);
  CHECK(get_int_option(cport->native_handle(), SOL_SOCKET, SO_BROADCAST) == 0);
  cport->write("everyone", Address::ip("255.255.255.255", 9));
  wait_for(reactor, [&] { return client.errors.size() == 1; }, "the refused broadcast");
  CHECK(client.errors[0].is(error::datagram_failed));
  CHECK(client.errors[0].cause() == std::errc::permission_denied);
  cport->set_broadcast_allowed(true);
  CHECK(get_int_option(cport->native_handle(), SOL_SOCKET, SO_BROADCAST) == 1);
  cport->set_broadcast_allowed(false);
  CHECK(get_int_option(cport->native_handle(), SOL_SOCKET, SO_BROADCAST) == 0);
  cport->stop_listening();
  wait_for(reactor, [&] { return client.stopped == 1; }, "stopped");
}

TEST_CASE("udp multicast join, ttl, loopback and leave") {
  Reactor reactor;
  const std::string group = "239.255.42.99";
  Recorder member;
  UdpListenOptions any;
  any.reuse_address = true;
  auto mport = listen_udp(reactor, 0, member, any);
  mport->join_group(group, "127.0.0.1");
  CHECK_THROWS_AS(mport->join_group("10.0.0.1"), std::system_error);  // not a group

  Recorder sender;
  auto sport = listen_udp(reactor, 0, sender, loopback());
  sport->set_multicast_interface("127.0.0.1");
  sport->set_multicast_ttl(3);
  CHECK(get_int_option(sport->native_handle(), IPPROTO_IP, IP_MULTICAST_TTL) == 3);
  CHECK_THROWS_AS(sport->set_multicast_ttl(256), std::invalid_argument);
  sport->set_multicast_loopback(true);
  CHECK(get_int_option(sport->native_handle(), IPPROTO_IP, IP_MULTICAST_LOOP) == 1);

  const Address to = Address::ip(group, mport->port());
  sport->write("to the group", to);
  wait_for(reactor, [&] { return member.datagrams.size() == 1; }, "the multicast datagram");
  CHECK(member.datagrams[0] == "to the group");

  // On the loopback interface the "wire" itself loops datagrams back, so only the
  // option's value can be checked here.
  sport->set_multicast_loopback(false);
  CHECK(get_int_option(sport->native_handle(), IPPROTO_IP, IP_MULTICAST_LOOP) == 0);

  mport->leave_group(group, "127.0.0.1");
  sport->write("after leaving", to);
  // A marker sent directly proves the loop ran past the group datagram.
  sport->write("direct", Address::ip("127.0.0.1", mport->port()));
  wait_for(reactor, [&] { return member.datagrams.size() == 2; }, "the direct datagram");
  CHECK(member.datagrams[1] == "direct");
  mport->stop_listening();
  sport->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}

TEST_CASE("udp pause_reading holds datagrams back without loss") {
  Reactor reactor;
  Recorder server;
  auto port = listen_udp(reactor, 0, server, loopback());
  Recorder client;
  auto cport = listen_udp(reactor, 0, client, loopback());
  wait_for(reactor, [&] { return server.started == 1; }, "started");
  port->pause_reading();
  port->pause_reading();
  test::settle(reactor);
  const std::size_t before = server.datagrams.size();
  for (int i = 0; i < 5; ++i) cport->write(std::to_string(i), port->get_host());
  // The five are in the server socket's queue before settle's sentinel is written: a
  // port still reading would have taken them by the time it arrives.
  test::settle(reactor);
  CHECK(server.datagrams.size() <= before + 1);  // at most the receive already in flight
  port->resume_reading();
  wait_for(reactor, [&] { return server.datagrams.size() == 5; }, "all five");
  CHECK(server.datagrams.back() == "4");
  port->stop_listening();
  cport->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}

TEST_CASE("udp bad arguments throw before anything happens") {
  Reactor reactor;
  Recorder p;
  CHECK_THROWS_AS(listen_udp(reactor, 70000, p), std::invalid_argument);
  UdpListenOptions bad;
  bad.interface = "not-an-address";
  CHECK_THROWS_AS(listen_udp(reactor, 0, p, bad), std::invalid_argument);
  Recorder a;
  auto port = listen_udp(reactor, 0, a, loopback());
  Recorder b;
  std::error_code ec;
  auto clash = listen_udp(reactor, port->port(), b, loopback(), ec);
  CHECK(clash == nullptr);
  CHECK(ec == std::errc::address_in_use);
  CHECK_THROWS_AS(listen_udp(reactor, port->port(), b, loopback()), std::system_error);
  test::settle(reactor);  // anything the failed calls had queued would have run
  CHECK(b.started == 0);
  port->stop_listening();
  wait_for(reactor, [&] { return a.stopped == 1; }, "stopped");
}

TEST_CASE("udp over IPv6 loopback") {
  Reactor reactor;
  UdpListenOptions v6;
  v6.interface = "::1";
  Recorder server;
  server.echo = true;
  auto port = listen_udp(reactor, 0, server, v6);
  CHECK(port->get_host().family() == Address::Family::ipv6);
  CHECK(port->max_datagram_size() == 65527);
  Recorder client;
  auto cport = listen_udp(reactor, 0, client, v6);
  cport->write("six", port->get_host());
  wait_for(reactor, [&] { return client.datagrams.size() == 1; }, "the IPv6 echo");
  CHECK(client.datagrams[0] == "six");
  CHECK(client.senders[0] == port->get_host());
  CHECK_THROWS_AS(cport->write(std::string(65528, 'x'), port->get_host()), std::length_error);
  port->stop_listening();
  cport->stop_listening();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closed");
}
