// A TLS port under floods: failed handshakes and an accept loop out of descriptors are
// logged at most one line a second, and the next line says how many were left out. (The
// cap on handshakes under way is in tls_test.cpp; the limiter itself in log_limit_test.)

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/log.hpp"
#include "framework/reactor.hpp"
#include "tests/support/descriptor_flood.hpp"
#include "tests/support/log_guard.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/tls_certs.hpp"
#include "tests/support/tls_fixture.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"
#include "transports/tls.hpp"

using namespace torsion;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::TlsFixture;
using torsion::test::wait_for;

namespace {

// How many events a rate-limited line stands for: itself and the "(N more like it" it
// reports left out before it.
int events_in(const std::string& line) {
  const auto tail = line.find(" more like it");
  if (tail == std::string::npos) return 1;
  const auto open = line.rfind('(', tail);
  int more = 0;
  REQUIRE(open != std::string::npos);
  REQUIRE(std::sscanf(line.c_str() + open, "(%d more like it", &more) == 1);
  return 1 + more;
}

// Plain TCP clients that send an HTTP request where the ClientHello belongs.
void send_garbage(Reactor& reactor, int port, std::deque<RecordingClientFactory>& clients,
                  std::vector<std::shared_ptr<Connector>>& connectors, int count) {
  for (int i = 0; i < count; ++i) {
    auto& c = clients.emplace_back();
    c.setup = [](Record& r) {
      r.on_made = [](Record& rr) { rr.transport->write("GET / HTTP/1.0\r\n\r\n"); };
    };
    connectors.push_back(connect_tcp(reactor, "127.0.0.1", port, c));
  }
}

}  // namespace

TEST_CASE("tls failed handshakes: one line a second, the next says how many were left out") {
  const test::LogSinkGuard restore;
  TlsFixture f;
  struct Line {
    std::string text;
    double at;
  };
  std::vector<Line> lines;
  set_log_level(LogLevel::info);
  set_log_sink([&](LogLevel, std::string_view line) {
    if (line.find("TLS handshake failed") != std::string_view::npos)
      lines.push_back({std::string(line), f.reactor.seconds()});
  });
  int failed = 0;
  f.sopt.handshake_failed = [&](const Address&, const Reason&) { ++failed; };
  f.listen();
  std::deque<RecordingClientFactory> clients;
  std::vector<std::shared_ptr<Connector>> connectors;
  constexpr int kFlood = 20;
  send_garbage(f.reactor, f.port->port(), clients, connectors, kFlood);
  wait_for(f.reactor, [&] { return failed == kFlood; }, "every handshake to fail");
  REQUIRE(!lines.empty());
  CHECK(lines.size() < static_cast<std::size_t>(kFlood));  // a flood is not a line each
  CHECK(events_in(lines[0].text) == 1);                   // the first says nothing more
  // Once the interval has passed, the next failure is logged with the count of those left
  // out since the last line: every failure is in some line.
  const double last = lines.back().at;
  wait_for(f.reactor, [&] { return f.reactor.seconds() > last + 1.0; }, "the interval to pass");
  const std::size_t before = lines.size();
  send_garbage(f.reactor, f.port->port(), clients, connectors, 1);
  wait_for(f.reactor, [&] { return failed == kFlood + 1; }, "one more failure");
  REQUIRE(lines.size() == before + 1);
  int events = 0;
  for (const auto& l : lines) events += events_in(l.text);
  CHECK(events == kFlood + 1);
  if (lines.size() == 2) CHECK(lines[1].text.find("more like it") != std::string::npos);
  f.port->stop_listening();
  wait_for(f.reactor, [&] { return f.reactor.connection_count() == 0; }, "every connection");
}

namespace {

// Runs in a forked child: a TLS port whose process has used up its descriptors. The accept
// loop retries every 0.1 s; a warning is logged at most once a second, the retries between
// at debug level, and the second warning counts them. Returns the exit code (0: good).
int tls_emfile_child(const test::TestPki& pki) {
  std::vector<std::string> warnings;
  int retries_between = 0;  // debug lines after the first warning, before the second
  set_log_level(LogLevel::debug);
  set_log_sink([&](LogLevel level, std::string_view m) {
    if (m.find("accept on") == std::string_view::npos) return;
    if (level == LogLevel::warning)
      warnings.emplace_back(m);
    else if (warnings.size() == 1)
      ++retries_between;
  });
  Reactor reactor;
  TlsServerContext sctx(test::server_options(pki));
  test::RecordingFactory server;
  auto port = listen_ssl(reactor, 0, server, sctx, "127.0.0.1");

  std::vector<int> clients;
  if (const int failed = test::flood_descriptors(port->port(), clients)) return failed;

  if (!reactor.run_until([&] { return warnings.size() >= 2; }, 10)) return 20;
  if (warnings[0].find("more like it") != std::string::npos) return 21;
  if (retries_between < 1) return 22;
  const std::string count = " (" + std::to_string(retries_between) + " more like it";
  if (warnings[1].find(count) == std::string::npos) return 23;
  if (!port->listening()) return 24;
  for (int fd : clients) ::close(fd);
  return 0;
}

}  // namespace

TEST_CASE("tls out of descriptors: the accept warning once a second, with the retries left out") {
  const test::TestPki pki;  // made here: the child leaves by _exit, without destructors
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(tls_emfile_child(pki));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  // 1x: setup; 20: fewer than two warnings in 10 s; 21: the first carried a count;
  // 22: no retry between the two; 23: the second did not count them; 24: stopped listening.
  CHECK(WEXITSTATUS(status) == 0);
}
