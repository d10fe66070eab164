// Socket activation without libsystemd: systemd_sockets, listen_systemd, the systemd:
// endpoint, systemd_notify, and the graceful-restart recipe of docs/deploying.md. The
// sockets systemd passes are descriptors 3, 4, ... of a process of their own, so each case
// runs the activated server in a forked child set up as systemd sets up a service
// (dup2 to 3.., every other descriptor closed, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES);
// the child reports through its exit status, the parent connects as a client would.
// echo_server --systemd under the real systemd-socket-activate is in tests/examples/run.sh.
#include "transports/systemd.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "framework/endpoints.hpp"
#include "framework/log.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/endpoints.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::child_exited;
using torsion::test::fork_child;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;

namespace {

int raw_listener() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 64) == 0);
  return fd;
}

int port_of(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  return ntohs(addr.sin_port);
}

// Forks a child set up as systemd starts a socket-activated service: `fds` become 3, 4...,
// every other descriptor above 2 is closed (the parent's reactor included), and the
// environment says so. The child runs `body` and exits with what it returns.
pid_t start_activated(const std::vector<int>& fds, const std::string& names,
                      const std::function<int()>& body) {
  return fork_child([&] {
    std::vector<int> high;
    for (int fd : fds) high.push_back(::fcntl(fd, F_DUPFD, 100));
    for (std::size_t i = 0; i < high.size(); ++i)
      if (::dup2(high[i], 3 + static_cast<int>(i)) < 0) return 90;
    ::close_range(3 + static_cast<unsigned>(fds.size()), ~0U, 0);
    const std::string pid = std::to_string(::getpid());
    ::setenv("LISTEN_PID", pid.c_str(), 1);
    ::setenv("LISTEN_FDS", std::to_string(fds.size()).c_str(), 1);
    ::setenv("LISTEN_FDNAMES", names.c_str(), 1);
    set_log_level(LogLevel::warning);  // the child's "shutting down" is not news
    return body();
  });
}

// Writes `name` and a newline to every client, then echoes.
class Greeter : public Protocol {
 public:
  explicit Greeter(std::string name) : name_(std::move(name)) {}
  void connection_made() override { transport().write(name_ + "\n"); }
  void data_received(std::string_view data) override { transport().write(data); }

 private:
  std::string name_;
};

struct GreeterFactory : Factory {
  std::string name;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<Greeter>(name);
  }
};

// A server that serves the systemd socket `which` (index or name, through the endpoint
// string "systemd:WHICH") with a Greeter named `name` until SIGTERM; exits 0 after a
// clean shutdown, 3 if listening failed.
int serve_activated(const std::string& which, const std::string& name) {
  Reactor reactor;
  GreeterFactory factory;
  factory.name = name;
  try {
    server_from_string(reactor, "systemd:" + which)->listen(factory);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serve_activated: %s\n", e.what());
    return 3;
  }
  reactor.run();
  return reactor.last_signal() == SIGTERM ? 0 : 4;
}

// Connects a client to 127.0.0.1:port and waits for the greeting line.
std::string greeting(Reactor& reactor, RecordingClientFactory& client, int port) {
  const std::size_t n = client.records.size();
  connect_tcp(reactor, "127.0.0.1", port, client);
  REQUIRE(wait_for(reactor, [&] {
    return client.records.size() > n && client.records[n].received.find('\n') != std::string::npos;
  }, "a greeting"));
  return client.records[n].received;
}

bool wait_exit(Reactor& reactor, pid_t pid, int& status) {
  return wait_for(reactor, [&] { return child_exited(pid, status); }, "the child's exit");
}

}  // namespace

TEST_CASE("systemd: no sockets unless LISTEN_PID is this process") {
  ::unsetenv("LISTEN_PID");
  CHECK(systemd_sockets().empty());
  Reactor reactor;
  GreeterFactory factory;
  std::error_code ec;
  CHECK(listen_systemd(reactor, 0, factory, ec) == nullptr);
  CHECK(ec == std::errc::no_such_device_or_address);
  CHECK_THROWS_WITH_AS(listen_systemd(reactor, "web", factory),
                       doctest::Contains("systemd passed no sockets"), std::system_error);
}

TEST_CASE("systemd: sockets by index and by name, as LISTEN_FDS and LISTEN_FDNAMES say") {
  const int web = raw_listener();
  const int admin = raw_listener();
  const pid_t pid = start_activated({web, admin}, "web:admin", [] {
    const auto sockets = systemd_sockets();
    if (sockets.size() != 2) return 10;
    if (sockets[0].fd != 3 || sockets[0].name != "web") return 11;
    if (sockets[1].fd != 4 || sockets[1].name != "admin") return 12;
    if (!(::fcntl(3, F_GETFD) & FD_CLOEXEC)) return 13;  // not left to children
    Reactor reactor;
    GreeterFactory factory;
    auto by_index = listen_systemd(reactor, 1, factory);
    auto by_name = listen_systemd(reactor, "admin", factory);
    if (by_index->port() != by_name->port()) return 14;  // the same socket, twice
    std::error_code ec;
    if (listen_systemd(reactor, 2, factory, ec) || ec != std::errc::no_such_device_or_address)
      return 15;
    if (listen_systemd(reactor, "nope", factory, ec)) return 16;
    ::setenv("LISTEN_PID", "1", 1);  // for another process: nothing
    if (!systemd_sockets().empty()) return 17;
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2x", 1);  // not a count: nothing
    if (!systemd_sockets().empty()) return 18;
    ::setenv("LISTEN_FDS", "2", 1);
    ::unsetenv("LISTEN_FDNAMES");  // no names: "unknown", as sd_listen_fds_with_names
    if (systemd_sockets().at(1).name != "unknown") return 19;
    return 0;
  });
  Reactor reactor;
  int status = -1;
  REQUIRE(wait_exit(reactor, pid, status));
  CHECK(status == 0);  // 10..19 name the check that failed, in the order above
  ::close(web);
  ::close(admin);
}

TEST_CASE("systemd: endpoint strings parse and print back") {
  Reactor reactor;
  CHECK(server_from_string(reactor, "systemd:0")->description() == "systemd:index=0");
  CHECK(server_from_string(reactor, "systemd:index=2")->description() == "systemd:index=2");
  CHECK(server_from_string(reactor, "systemd:web")->description() == "systemd:name=web");
  CHECK(server_from_string(reactor, "systemd:domain=INET:name=admin")->description() ==
        "systemd:name=admin");
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:"), EndpointError);
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:index=0:name=web"), EndpointError);
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:index=-1"), EndpointError);
  // A bare number is an index, in the same range as index= (found by endpoints_fuzz: it
  // took 4594, whose description then refused to parse back).
  CHECK(server_from_string(reactor, "systemd:4095")->description() == "systemd:index=4095");
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:4594"), EndpointError);
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:index=4096"), EndpointError);
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:index=0:backlog=3"), EndpointError);
  CHECK_THROWS_AS(server_from_string(reactor, "systemd:name=" + std::string(256, 'n')),
                  EndpointError);
}

TEST_CASE("systemd: graceful restart: a new process takes the socket, the old one drains") {
  // The recipe of docs/deploying.md: the listening socket outlives both processes (here
  // the test holds it, as systemd's .socket unit does), so no connection is refused.
  const int listener = raw_listener();
  const int port = port_of(listener);
  const pid_t old_server = start_activated({listener}, "web", [] { return serve_activated("web", "old"); });
  REQUIRE(old_server > 0);  // signals go to the child's pid only, never to 0 or -1

  Reactor reactor;  // after the fork: the child never sees it
  RecordingClientFactory client;
  REQUIRE(greeting(reactor, client, port) == "old\n");  // only the old process serves yet
  Record& held = client.records[0];  // a connection the old process must drain

  const pid_t new_server = start_activated({listener}, "web", [] { return serve_activated("0", "new"); });
  REQUIRE(new_server > 0);
  held.transport->write("last words");
  REQUIRE(wait_for(reactor, [&] { return held.received == "old\nlast words"; }, "echo from old"));

  REQUIRE(::kill(old_server, SIGTERM) == 0);  // the old one: stop accepting, drain, exit
  int status = -1;
  REQUIRE(wait_exit(reactor, old_server, status));
  CHECK(status == 0);
  REQUIRE(wait_for(reactor, [&] { return held.lost == 1; }, "the held connection closed"));
  CHECK(held.reason->clean());  // closed by lose_connection, not reset

  for (int i = 0; i < 3; ++i) CHECK(greeting(reactor, client, port) == "new\n");
  REQUIRE(::kill(new_server, SIGTERM) == 0);
  REQUIRE(wait_exit(reactor, new_server, status));
  CHECK(status == 0);
  ::close(listener);
}

TEST_CASE("systemd_notify: READY=1 and STOPPING=1 reach NOTIFY_SOCKET") {
  const int sink = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(sink >= 0);
  const std::string name = "@torsion-notify-" + std::to_string(::getpid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  REQUIRE(::bind(sink, reinterpret_cast<sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())) == 0);
  auto next = [&] {
    char buf[256];
    const ssize_t n = ::recv(sink, buf, sizeof buf, 0);
    return n < 0 ? std::string("(nothing)") : std::string(buf, static_cast<std::size_t>(n));
  };

  ::unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(systemd_notify("READY=1"));  // not under systemd: nothing to do
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  CHECK(systemd_notify("STATUS=warming up"));
  CHECK(next() == "STATUS=warming up");

  Reactor reactor;
  reactor.set_handle_signals(false);
  notify_systemd_ready(reactor);
  CHECK(next() == "READY=1");
  reactor.shutdown();
  reactor.run();
  CHECK(next() == "STOPPING=1");

  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  std::error_code ec;
  CHECK_FALSE(systemd_notify("READY=1", ec));
  CHECK(ec == std::errc::invalid_argument);
  ::unsetenv("NOTIFY_SOCKET");
  ::close(sink);
}
