#include "transports/unix.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "protocols/timeout.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;

namespace {

// A fresh private directory, removed (with what is left in it) at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/torsion-unix-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Leaves a socket file behind as a crashed server would: bound, then closed.
void make_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
}

std::string abstract_name() { return "@torsion-test-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()); }

void echo_setup(Record& r) {
  r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
}

void run_echo(Reactor& reactor, const std::string& path, RecordingFactory& server,
              const std::string& message) {
  RecordingClientFactory client;
  client.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) { rr.transport->write(message); };
    r.on_data = [&](Record& rr, std::string_view) {
      if (rr.received.size() == message.size()) rr.transport->lose_connection();
    };
  };
  auto connector = connect_unix(reactor, path, client);
  wait_for(reactor, [&] { return client.lost == 1 && !server.records.empty() && server.records.back().done(); },
           "echo over the Unix socket");
  REQUIRE(client.records.size() == 1);
  CHECK(client.records[0].received == message);
  CHECK(client.records[0].reason->clean());
  CHECK(server.records.back().reason->clean());
  CHECK(connector->get_destination() == Address::unix_socket(path));
}

}  // namespace

TEST_CASE("unix echo round trip removes the socket file on stop") {
  TempDir dir;
  const std::string path = dir / "echo.sock";
  Reactor reactor;
  RecordingFactory server;
  server.setup = echo_setup;
  auto port = listen_unix(reactor, path, server);
  CHECK(exists(path));
  CHECK(port->get_host() == Address::unix_socket(path));
  std::string big(300 * 1024, 'u');  // bigger than the socket buffers: exercises the queue
  run_echo(reactor, path, server, big);
  CHECK(server.records[0].received.size() == big.size());
  port->stop_listening();
  CHECK_FALSE(port->listening());
  CHECK_FALSE(exists(path));
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("unix stale socket file is replaced, live or foreign files are not") {
  TempDir dir;
  Reactor reactor;
  RecordingFactory server;
  server.setup = echo_setup;

  const std::string stale = dir / "stale.sock";
  make_stale_socket(stale);
  REQUIRE(exists(stale));
  auto port = listen_unix(reactor, stale, server);
  run_echo(reactor, stale, server, "after a crash");

  // A live listener keeps its path.
  RecordingFactory other;
  std::error_code ec;
  CHECK(listen_unix(reactor, stale, other, {}, ec) == nullptr);
  CHECK(ec == std::errc::address_in_use);
  CHECK(exists(stale));
  run_echo(reactor, stale, server, "still the first server");

  // A regular file is never removed.
  const std::string plain = dir / "plain";
  std::ofstream(plain) << "data";
  CHECK_THROWS_AS(listen_unix(reactor, plain, other), std::system_error);
  CHECK(exists(plain));

  // remove_stale = false leaves a stale file alone.
  const std::string kept = dir / "kept.sock";
  make_stale_socket(kept);
  UnixListenOptions no_remove;
  no_remove.remove_stale = false;
  CHECK(listen_unix(reactor, kept, other, no_remove, ec) == nullptr);
  CHECK(ec == std::errc::address_in_use);
  CHECK(exists(kept));

  // A file that replaced ours after binding is not removed by stop_listening.
  ::unlink(stale.c_str());
  make_stale_socket(stale);
  port->stop_listening();
  CHECK(exists(stale));
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("unix abstract namespace") {
  const std::string name = abstract_name();
  Reactor reactor;
  RecordingFactory server;
  server.setup = echo_setup;
  auto port = listen_unix(reactor, name, server);
  CHECK(port->get_host() == Address::unix_socket(name));
  CHECK_FALSE(exists(name));
  run_echo(reactor, name, server, "no file needed");
  port->stop_listening();
  RecordingClientFactory client;
  auto connector = connect_unix(reactor, name, client);
  wait_for(reactor, [&] { return client.failed == 1; }, "refusal after stop");
  CHECK(client.failure->is(error::connection_refused));
}

TEST_CASE("unix peer credentials, directly and through a stack of wrapping factories") {
  const std::string name = abstract_name();
  Reactor reactor;
  RecordingFactory server;
  TimeoutFactory idle(server, reactor, 60);
  TimeoutFactory twice(idle, reactor, 120);
  Factory* factory = &server;
  SUBCASE("direct") {}
  SUBCASE("behind two TimeoutFactory wrappers") { factory = &twice; }
  std::optional<PeerCredentials> seen;
  server.setup = [&](Record& r) {
    r.on_made = [&](Record& rr) {
      seen = peer_credentials(*rr.transport);
      rr.transport->lose_connection();
    };
  };
  auto port = listen_unix(reactor, name, *factory);
  RecordingClientFactory client;
  auto connector = connect_unix(reactor, name, client);
  wait_for(reactor, [&] { return client.lost == 1; }, "the server to close");
  REQUIRE(seen.has_value());
  CHECK(seen->pid == ::getpid());
  CHECK(seen->uid == ::getuid());
  CHECK(seen->gid == ::getgid());
  port->stop_listening();
}

TEST_CASE("unix connect failures and bad paths") {
  TempDir dir;
  Reactor reactor;
  RecordingClientFactory client;
  auto missing = connect_unix(reactor, dir / "missing.sock", client);
  wait_for(reactor, [&] { return client.failed == 1; }, "no such file");
  CHECK(client.failure->is(error::connect_failed));
  CHECK(client.failure->cause() == std::errc::no_such_file_or_directory);

  const std::string stale = dir / "stale.sock";
  make_stale_socket(stale);
  auto refused = connect_unix(reactor, stale, client);
  wait_for(reactor, [&] { return client.failed == 2; }, "refused");
  CHECK(client.failure->is(error::connection_refused));
  CHECK(client.started == 2);

  RecordingFactory f;
  CHECK_THROWS_AS(listen_unix(reactor, "", f), std::invalid_argument);
  CHECK_THROWS_AS(listen_unix(reactor, "/tmp/" + std::string(200, 'x'), f), std::invalid_argument);
  CHECK_THROWS_AS(connect_unix(reactor, "@", client), std::invalid_argument);
  UnixConnectOptions negative;
  negative.timeout = -1;
  CHECK_THROWS_AS(connect_unix(reactor, stale, client, negative), std::invalid_argument);
}

TEST_CASE("unix socket file mode") {
  TempDir dir;
  const std::string path = dir / "mode.sock";
  Reactor reactor;
  RecordingFactory server;
  UnixListenOptions options;
  options.mode = 0600;
  auto port = listen_unix(reactor, path, server, options);
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  port->stop_listening();
  CHECK_FALSE(exists(path));
}

TEST_CASE("unix connector: throwing callbacks fail the attempt, disconnect frees it at once") {
  TempDir dir;
  Reactor reactor;
  RecordingFactory server;
  const std::string path = dir / "s.sock";
  auto port = listen_unix(reactor, path, server);

  struct Throwing : RecordingClientFactory {
    std::string where;
    std::unique_ptr<Protocol> build_protocol(const Address& peer) override {
      if (where == "build_protocol") throw std::runtime_error("boom in build_protocol");
      return RecordingClientFactory::build_protocol(peer);
    }
    void started_connecting(Connector& c) override {
      RecordingClientFactory::started_connecting(c);
      if (where == "started_connecting") throw std::runtime_error("boom in started_connecting");
    }
  };
  for (std::string where : {"build_protocol", "started_connecting"}) {
    CAPTURE(where);
    Throwing client;
    client.where = where;
    connect_unix(reactor, path, client);
    wait_for(reactor, [&] { return client.failed == 1; }, "the attempt to fail");
    CHECK(client.failure->is(error::callback_threw));
    CHECK(client.records.empty());
  }

  // disconnect() while connecting gives the attempt up at once, so connect() starts
  // another straight away; the factory hears of the cancelled one from the loop.
  RecordingClientFactory client;
  auto connector = connect_unix(reactor, path, client);
  connector->disconnect();
  connector->connect();
  wait_for(reactor, [&] { return client.failed == 1 && client.records.size() == 1; },
           "the cancellation, then the second attempt's connection");
  CHECK(client.failure->is(error::cancelled));
  CHECK(client.started == 1);  // the first attempt never started
  CHECK(client.records[0].made == 1);
  connector->disconnect();
  wait_for(reactor, [&] { return client.lost == 1; }, "the connection to end");
  CHECK(client.lost_reason->clean());
  port->stop_listening();
}
