#include "framework/log.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "framework/reactor.hpp"
#include "tests/support/log_guard.hpp"
#include "tests/support/temp_files.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::capture_stderr;
using torsion::test::LogSinkGuard;

namespace {


struct Line {
  LogLevel level;
  std::string text;
};

}  // namespace

TEST_CASE("a line sink receives the level and the message") {
  LogSinkGuard guard;
  std::vector<Line> lines;
  set_log_sink([&](LogLevel level, std::string_view text) { lines.push_back({level, std::string(text)}); });
  log(LogLevel::warning, "disk almost full");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].level == LogLevel::warning);
  CHECK(lines[0].text == "disk almost full");
}

TEST_CASE("events below the minimum level are dropped") {
  LogSinkGuard guard;
  std::vector<Line> lines;
  set_log_sink([&](LogLevel level, std::string_view text) { lines.push_back({level, std::string(text)}); });
  CHECK(log_level() == LogLevel::info);
  CHECK_FALSE(log_enabled(LogLevel::debug));
  CHECK(log_enabled(LogLevel::info));
  log(LogLevel::debug, "hidden");
  log(LogLevel::info, "shown");
  set_log_level(LogLevel::error);
  log(LogLevel::warning, "hidden too");
  log(LogLevel::error, "shown too");
  set_log_level(LogLevel::debug);
  log(LogLevel::debug, "now shown");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].text == "shown");
  CHECK(lines[1].text == "shown too");
  CHECK(lines[2].text == "now shown");
}

TEST_CASE("connection context goes in front of the line") {
  LogSinkGuard guard;
  std::vector<Line> lines;
  set_log_sink([&](LogLevel level, std::string_view text) { lines.push_back({level, std::string(text)}); });
  const LogContext full{7, Address::ip("127.0.0.1", 8080), Address::ip("::1", 40312)};
  log(LogLevel::error, full, "exception in data_received: bug");
  const LogContext id_only{8, {}, {}};
  log(LogLevel::error, id_only, "x");
  const LogContext peer_only{0, {}, Address::unix_socket("/run/a.sock")};
  log(LogLevel::error, peer_only, "y");
  const LogContext empty{};
  log(LogLevel::error, empty, "z");
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "conn 7 127.0.0.1:8080 <- [::1]:40312: exception in data_received: bug");
  CHECK(lines[1].text == "conn 8: x");
  CHECK(lines[2].text == "<- unix:/run/a.sock: y");
  CHECK(lines[3].text == "z");
}

TEST_CASE("an event sink receives the fields apart") {
  LogSinkGuard guard;
  std::vector<std::uint64_t> ids;
  std::vector<std::string> peers;
  std::vector<std::string> messages;
  set_log_event_sink([&](const LogEvent& e) {
    messages.emplace_back(e.message);
    ids.push_back(e.context ? e.context->connection_id : 0);
    peers.push_back(e.context ? e.context->peer.to_string() : "");
  });
  log(LogLevel::info, "plain");
  log(LogLevel::info, LogContext{42, Address::ip("10.0.0.1", 1), Address::ip("10.0.0.2", 2)},
      "about 42");
  CHECK(messages == std::vector<std::string>{"plain", "about 42"});
  CHECK(ids == std::vector<std::uint64_t>{0, 42});
  CHECK(peers == std::vector<std::string>{"", "10.0.0.2:2"});
}

TEST_CASE("the default sink writes one stderr line with time, level and context") {
  LogSinkGuard guard;
  const std::string out = capture_stderr([] {
    log(LogLevel::warning, LogContext{3, Address::ip("127.0.0.1", 1), Address::ip("127.0.0.1", 2)},
        "accept failed");
    log(LogLevel::debug, "dropped");
  });
  // 2026-11-26T05:30:00.123Z [warning] conn 3 127.0.0.1:1 <- 127.0.0.1:2: accept failed\n
  REQUIRE(out.size() > 25);
  CHECK(out[4] == '-');
  CHECK(out[10] == 'T');
  CHECK(out[23] == 'Z');
  CHECK(out.substr(24) == " [warning] conn 3 127.0.0.1:1 <- 127.0.0.1:2: accept failed\n");
}

TEST_CASE("set_log_sink(nullptr) restores the default sink") {
  LogSinkGuard guard;
  int calls = 0;
  set_log_sink([&](LogLevel, std::string_view) { ++calls; });
  set_log_sink(nullptr);
  const std::string out = capture_stderr([] { log(LogLevel::error, "to stderr"); });
  CHECK(calls == 0);
  CHECK(out.find("[error] to stderr") != std::string::npos);
  set_log_event_sink([&](const LogEvent&) { ++calls; });
  set_log_event_sink(nullptr);
  CHECK(capture_stderr([] { log(LogLevel::error, "again"); }).find("again") != std::string::npos);
  CHECK(calls == 0);
}

TEST_CASE("connection ids are unique across threads") {
  std::vector<std::uint64_t> a, b;
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) a.push_back(next_connection_id());
  });
  for (int i = 0; i < 1000; ++i) b.push_back(next_connection_id());
  t.join();
  std::set<std::uint64_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  CHECK(all.size() == 2000);
  CHECK(*all.begin() > 0);
}

TEST_CASE("level names round-trip") {
  for (auto level : {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error})
    CHECK(parse_log_level(to_string(level)) == level);
  CHECK(parse_log_level("warn") == LogLevel::warning);
  CHECK_FALSE(parse_log_level("loud").has_value());
  CHECK_FALSE(parse_log_level("").has_value());
}

TEST_CASE("exceptions swallowed by the reactor reach a user sink") {
  LogSinkGuard guard;
  std::vector<Line> lines;
  set_log_sink([&](LogLevel level, std::string_view text) { lines.push_back({level, std::string(text)}); });
  Reactor reactor;
  bool after = false;
  reactor.call_soon([] { throw std::runtime_error("callback bug"); });
  reactor.call_idle([&] { after = true; });
  torsion::test::wait_for(reactor, [&] { return after; }, "the idle callback");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].level == LogLevel::error);
  CHECK(lines[0].text.find("callback bug") != std::string::npos);
}
