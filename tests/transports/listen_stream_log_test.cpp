// listen_stream's log: a peer that goes away is not a server error.

#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "framework/task.hpp"
#include "tests/support/log_guard.hpp"
#include "tests/support/wait.hpp"
#include "transports/connect_stream.hpp"
#include "transports/listen_stream.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

struct Logged {
  LogLevel level;
  std::string line;
};

// Connects to `server` and returns the client's Stream, or fails the test.
Stream connect_to(Reactor& reactor, StreamServer& server) {
  std::optional<Stream> client;
  connect_stream(reactor, "127.0.0.1", server.port()).add_callback([&](Stream s) {
    client.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return client.has_value(); }, "the connection");
  return std::move(*client);
}

// Serves one connection whose client sends "x\n". With `reset` the client then resets the
// connection, so that the handler's next read fails with ConnectionError; without, the
// handler throws an error of its own. Returns what listen_stream logged about it.
std::vector<Logged> serve_once(bool reset) {
  test::LogSinkGuard guard;
  set_log_level(LogLevel::debug);
  std::vector<Logged> logged;
  set_log_sink([&](LogLevel level, std::string_view line) {
    if (line.find("listen_stream") != std::string_view::npos)
      logged.push_back({level, std::string(line)});
  });
  Reactor reactor;
  auto server = listen_stream(reactor, "tcp:0:interface=127.0.0.1",
                              [reset](Stream s) -> Task<void> {
                                auto line = co_await s.read_line(100);
                                if (!reset) throw std::runtime_error("a bug in the handler");
                                s.write("got " + line.value_or("-") + "\n");
                                co_await s.read_line(100);  // the reset ends this read
                              });
  Stream client = connect_to(reactor, *server);
  client.write("x\n");
  if (reset) {
    bool answered = false;
    client.read_line(100).add_callback([&](std::optional<std::string>) { answered = true; });
    wait_for(reactor, [&] { return answered; }, "the handler's answer");
    client.abort();  // RST
  }
  wait_for(reactor, [&] { return !logged.empty() && server->handlers() == 0; },
           "the handler's end, logged");
  server->close().add_callback([] {});
  return logged;
}

}  // namespace

TEST_CASE("listen_stream_logs_a_peer_reset_at_info_not_error") {
  const std::vector<Logged> logged = serve_once(true);
  REQUIRE(logged.size() == 1);
  INFO(logged[0].line);
  CHECK(logged[0].level == LogLevel::info);
  CHECK(logged[0].line.find("a peer went away") != std::string::npos);
  CHECK(logged[0].line.find("connection lost") != std::string::npos);
}

TEST_CASE("listen_stream_still_logs_a_handler_bug_at_error") {
  const std::vector<Logged> logged = serve_once(false);
  REQUIRE(logged.size() == 1);
  INFO(logged[0].line);
  CHECK(logged[0].level == LogLevel::error);
  CHECK(logged[0].line.find("a connection's handler failed: a bug in the handler") !=
        std::string::npos);
}
