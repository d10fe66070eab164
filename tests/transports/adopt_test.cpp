// adopt_listening_socket and adopt_connection: sockets made outside torsion (raw
// socket(2) calls here, as a supervisor or systemd would make them) served as if torsion
// had made them; what is not a listening or connected TCP/Unix stream socket is refused
// and left to the caller.
#include "transports/adopt.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// A raw TCP socket on 127.0.0.1 with a kernel-picked port; listening if asked.
int raw_tcp(bool listening, int type = SOCK_STREAM) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  if (listening) REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

int port_of(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  return ntohs(addr.sin_port);
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

// Server records echo what they receive.
void echo(Record& r) {
  r.on_data = [](Record& rec, std::string_view d) { rec.transport->write(d); };
}

// Connects to 127.0.0.1:port, sends `text` and waits for it to come back.
void check_echo(Reactor& reactor, int port, const std::string& text) {
  RecordingClientFactory client;
  client.setup = [&](Record& r) { r.on_made = [&](Record& rec) { rec.transport->write(text); }; };
  connect_tcp(reactor, "127.0.0.1", port, client);
  REQUIRE(wait_for(reactor, [&] {
    return !client.records.empty() && client.records[0].received == text;
  }, "echo through the adopted port"));
  client.records[0].transport->lose_connection();
  REQUIRE(wait_for(reactor, [&] { return client.records[0].lost == 1; }, "client closed"));
}

}  // namespace

TEST_CASE("adopt_listening_socket: a raw TCP listening socket serves like listen_tcp's") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = echo;
  const int fd = raw_tcp(true);
  const int port = port_of(fd);
  auto listening = adopt_listening_socket(reactor, fd, server);
  REQUIRE(listening);
  CHECK(listening->listening());
  CHECK(listening->get_host().to_string() == "127.0.0.1:" + std::to_string(port));
  check_echo(reactor, port, "adopted");
  REQUIRE(server.records.size() == 1);
  REQUIRE(wait_for(reactor, [&] { return server.records[0].lost == 1; }, "server side closed"));
  CHECK(server.records[0].reason->clean());
  listening->stop_listening();
  // Taken over: closed with the port (on io_uring once the cancelled accept has ended).
  CHECK(wait_for(reactor, [&] { return !is_open(fd); }, "the adopted socket closed"));
  REQUIRE(wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "no live connections"));
}

TEST_CASE("adopt_listening_socket: a Unix socket keeps its file when the port stops") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = echo;
  const auto path = std::filesystem::temp_directory_path() /
                    ("torsion_adopt_" + std::to_string(::getpid()) + ".sock");
  std::filesystem::remove(path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  auto listening = adopt_listening_socket(reactor, fd, server);
  CHECK(listening->get_host() == Address::unix_socket(path.string()));

  RecordingClientFactory client;
  client.setup = [](Record& r) { r.on_made = [](Record& rec) { rec.transport->write("over unix"); }; };
  connect_unix(reactor, path.string(), client);
  REQUIRE(wait_for(reactor, [&] {
    return !client.records.empty() && client.records[0].received == "over unix";
  }, "echo over the adopted Unix socket"));
  client.records[0].transport->lose_connection();
  REQUIRE(wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "no live connections"));
  listening->stop_listening();
  CHECK(std::filesystem::exists(path));  // the file belongs to whoever bound it
  std::filesystem::remove(path);
}

TEST_CASE("adopt_listening_socket: refuses what is not a listening TCP or Unix stream socket") {
  Reactor reactor;
  RecordingFactory server;
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  const int unbound_listen = raw_tcp(false);
  const int udp = raw_tcp(false, SOCK_DGRAM);
  struct Case {
    int fd;
    std::errc expected;
  };
  for (const Case c : {Case{pipe_fds[0], std::errc::not_a_socket},
                       Case{unbound_listen, std::errc::invalid_argument},
                       Case{udp, std::errc::wrong_protocol_type},
                       Case{1000000, std::errc::bad_file_descriptor}}) {
    CAPTURE(c.fd);
    std::error_code ec;
    CHECK(adopt_listening_socket(reactor, c.fd, server, ec) == nullptr);
    CHECK(ec == c.expected);
    if (c.fd != 1000000) CHECK(is_open(c.fd));  // still the caller's
  }
  CHECK_THROWS_AS(adopt_listening_socket(reactor, udp, server), std::system_error);
  for (int fd : {pipe_fds[0], pipe_fds[1], unbound_listen, udp}) ::close(fd);
}

TEST_CASE("adopt_connection: one end of a socketpair is served, connection_made from the loop") {
  Reactor reactor;
  RecordingFactory server;
  server.setup = echo;
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  adopt_connection(reactor, pair[0], server);
  CHECK(server.records.empty());  // nothing inside the call
  REQUIRE(::send(pair[1], "ping", 4, MSG_NOSIGNAL) == 4);
  REQUIRE(wait_for(reactor, [&] { return !server.records.empty() && server.records[0].received == "ping"; },
                   "data on the adopted connection"));
  CHECK(server.records[0].transport->get_peer().family() == Address::Family::unix_socket);
  char buf[8];
  // The echo is sent by now (one send per batch when data_received returns).
  CHECK(::recv(pair[1], buf, sizeof buf, MSG_DONTWAIT) == 4);
  ::close(pair[1]);
  REQUIRE(wait_for(reactor, [&] { return server.records[0].lost == 1; }, "peer closed"));
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("adopt_connection: an accepted TCP socket; a refusing factory closes it") {
  Reactor reactor;
  const int listener = raw_tcp(true);
  const int port = port_of(listener);
  REQUIRE(::fcntl(listener, F_SETFL, O_NONBLOCK) == 0);  // accept4 below must not block

  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port, client);
  int accepted = -1;
  REQUIRE(wait_for(reactor, [&] {
    if (accepted < 0) accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    return accepted >= 0 && !client.records.empty();
  }, "raw accept"));

  struct Refusing : Factory {
    int asked = 0;
    Address peer;
    std::unique_ptr<Protocol> build_protocol(const Address& p) override {
      ++asked;
      peer = p;
      return nullptr;
    }
  } refusing;
  adopt_connection(reactor, accepted, refusing);
  REQUIRE(wait_for(reactor, [&] { return client.records[0].lost == 1; }, "refused connection closed"));
  CHECK(refusing.asked == 1);
  CHECK(refusing.peer.host() == "127.0.0.1");
  CHECK(client.records[0].reason->clean());
  ::close(listener);

  std::error_code ec;
  const int not_connected = raw_tcp(true);
  adopt_connection(reactor, not_connected, refusing, ec);  // listening, not connected
  CHECK(ec == std::errc::not_connected);
  CHECK(is_open(not_connected));
  ::close(not_connected);
}
