// drop_privileges: a server binds as root, then serves as "nobody" (or a numeric uid
// with no passwd entry) and cannot get root back. Each case that changes credentials runs
// in a forked child (the test process keeps root); the child reports through its exit
// status. Needs root, as twistd's --uid does: skipped, saying so, otherwise.
#include "transports/privileges.hpp"

#include <doctest/doctest.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <system_error>

#include "framework/log.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/adopt.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::child_exited;
using torsion::test::fork_child;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;

namespace {

bool root_here() {
  if (::geteuid() == 0) return true;
  MESSAGE("skipped: changing credentials needs root");
  return false;
}

// Tells each client "uid U gid G groups N\n": who serves it.
struct WhoAmI : Protocol {
  void connection_made() override {
    transport().write("uid " + std::to_string(::getuid()) + " gid " + std::to_string(::getgid()) +
                      " groups " + std::to_string(::getgroups(0, nullptr)) + "\n");
  }
};

}  // namespace

TEST_CASE("drop_privileges: bound as root, served as nobody, root cannot come back") {
  if (!root_here()) return;
  passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) {
    MESSAGE("skipped: no user 'nobody' in the passwd database");
    return;
  }
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  const auto raw = torsion::test::raw_listener();
  const int listener = raw.fd;
  const int port = raw.port;
  const pid_t child = fork_child([&] {
    set_log_level(LogLevel::warning);
    Reactor reactor;
    auto who = make_factory<WhoAmI>();
    auto serving = adopt_listening_socket(reactor, listener, who);  // bound while root
    const Credentials now = drop_privileges("nobody");
    if (now.uid != uid || now.gid != gid) return 10;
    uid_t r = 0, e = 0, s = 0;
    ::getresuid(&r, &e, &s);
    if (r != uid || e != uid || s != uid) return 11;  // the saved id too: no way back
    if (::setuid(0) == 0 || ::seteuid(0) == 0) return 12;
    try {
      drop_privileges("root");
      return 13;
    } catch (const std::system_error& e2) {
      if (e2.code() != std::errc::operation_not_permitted) return 14;
    }
    reactor.run();
    return reactor.last_signal() == SIGTERM ? 0 : 15;
  });
  REQUIRE(child > 0);
  ::close(listener);
  Reactor reactor;
  RecordingClientFactory client;
  connect_tcp(reactor, "127.0.0.1", port, client);
  REQUIRE(wait_for(reactor, [&] {
    return !client.records.empty() && client.records[0].received.find('\n') != std::string::npos;
  }, "the answer of the unprivileged server"));
  CHECK(client.records[0].received.rfind("uid " + std::to_string(uid) + " gid " + std::to_string(gid) + " groups ", 0) == 0);
  CHECK(client.records[0].received.find(" groups 0\n") == std::string::npos);  // nobody's own
  REQUIRE(::kill(child, SIGTERM) == 0);
  int status = -1;
  REQUIRE(wait_for(reactor, [&] { return child_exited(child, status); }, "the child's exit"));
  CHECK(status == 0);  // 10..15 name the check that failed, in the order above
}

TEST_CASE("drop_privileges: a numeric uid without a passwd entry, a group by name") {
  if (!root_here()) return;
  const uid_t free_uid = 54321;
  if (::getpwuid(free_uid) != nullptr) {
    MESSAGE("skipped: uid 54321 has a passwd entry here");
    return;
  }
  group* nogroup = ::getgrnam("nogroup");
  const pid_t child = fork_child([&] {
    const Credentials c = drop_privileges(std::to_string(free_uid));
    if (c.uid != free_uid || c.gid != free_uid) return 10;  // gid = uid: no primary group
    if (::getgroups(0, nullptr) != 0) return 11;            // no supplementary groups
    return 0;
  });
  REQUIRE(child > 0);
  Reactor reactor;
  int status = -1;
  REQUIRE(wait_for(reactor, [&] { return child_exited(child, status); }, "the child's exit"));
  CHECK(status == 0);
  if (nogroup == nullptr) return;
  const gid_t gid = nogroup->gr_gid;
  const pid_t second = fork_child([&] {
    const Credentials c = drop_privileges("nobody", "nogroup");
    return c.gid == gid && ::getgid() == gid && ::getegid() == gid ? 0 : 20;
  });
  REQUIRE(second > 0);
  REQUIRE(wait_for(reactor, [&] { return child_exited(second, status); }, "the second child's exit"));
  CHECK(status == 0);
}

TEST_CASE("drop_privileges: unknown names are refused before anything changes") {
  // These throw before any set*id call, so they are safe in the test process itself.
  CHECK_THROWS_AS(drop_privileges(""), std::invalid_argument);
  CHECK_THROWS_WITH_AS(drop_privileges("no-such-user-torsion"),
                       doctest::Contains("no such user 'no-such-user-torsion'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(drop_privileges("root", "no-such-group-torsion"),
                       doctest::Contains("no such group"), std::invalid_argument);
  CHECK(::geteuid() == ::getuid());  // nothing changed
}
