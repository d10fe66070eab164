#include "transports/listen_stream.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/task.hpp"
#include "transports/endpoints.hpp"
#include "transports/connect_stream.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

constexpr const char* kLoopback = "tcp:0:interface=127.0.0.1";

// A connected client Stream, or a failed test.
Stream connect(Reactor& reactor, StreamServer& server) {
  std::optional<Stream> client;
  connect_stream(reactor, "127.0.0.1", server.port()).add_callback([&](Stream s) {
    client.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return client.has_value(); }, "the connection");
  return std::move(*client);
}

// The next line the client reads (nullopt at the end), waited for.
std::optional<std::string> read_line(Reactor& reactor, Stream& s) {
  bool done = false;
  std::optional<std::string> line;
  s.read_line(1000).add_callback([&](std::optional<std::string> l) {
    line = std::move(l);
    done = true;
  });
  wait_for(reactor, [&] { return done; }, "a line");
  return line;
}

}  // namespace

TEST_CASE("listen_stream_handler_owns_its_captures_for_the_whole_coroutine") {
  Reactor reactor;
  // Long enough to live on the heap: use after free would show under ASan.
  std::string prefix(100, '>');
  auto server = listen_stream(reactor, kLoopback, [prefix, &reactor](Stream s) -> Task<void> {
    while (auto line = co_await s.read_line(1000)) {
      co_await next_turn(reactor);  // a suspension point between read and write
      s.write(prefix + *line + "\n");
    }
  });
  prefix.clear();
  Stream client = connect(reactor, *server);
  for (const char* word : {"one", "two"}) {
    client.write(std::string(word) + "\n");
    auto line = read_line(reactor, client);
    REQUIRE(line);
    CHECK(*line == std::string(100, '>') + word);
  }
  CHECK(server->handlers() == 1);
  client.close();
  wait_for(reactor, [&] { return server->handlers() == 0; }, "the handler to end");
  bool closed = false;
  server->close().add_callback([&] { closed = true; });
  CHECK(closed);
}

TEST_CASE("listen_stream_limits_handlers_then_queues_then_refuses") {
  Reactor reactor;
  ListenStreamOptions options;
  options.max_handlers = 1;
  options.max_waiting = 1;
  int served = 0;
  auto server = listen_stream(
      reactor, kLoopback,
      [&served](Stream s) -> Task<void> {
        ++served;
        auto line = co_await s.read_line(100);  // waits for its client to speak
        s.write("served " + line.value_or("?") + "\n");
        co_await s.drain();
      },
      options);
  Stream first = connect(reactor, *server);
  wait_for(reactor, [&] { return server->handlers() == 1; }, "the first handler");
  Stream second = connect(reactor, *server);
  wait_for(reactor, [&] { return server->waiting() == 1; }, "the second to wait");
  Stream third = connect(reactor, *server);
  wait_for(reactor, [&] { return server->refused() == 1; }, "the third to be refused");
  CHECK_FALSE(read_line(reactor, third));  // closed at once, nothing read
  CHECK(served == 1);

  second.write("b\n");  // buffered by the server while it waits
  first.write("a\n");
  CHECK(read_line(reactor, first) == "served a");
  CHECK(read_line(reactor, second) == "served b");
  CHECK(served == 2);
  wait_for(reactor, [&] { return server->handlers() == 0 && server->waiting() == 0; },
           "both handlers to end");
  bool closed = false;
  server->close().add_callback([&] { closed = true; });
  CHECK(closed);
}

TEST_CASE("listen_stream_logs_a_failed_handler_and_serves_on") {
  Reactor reactor;
  auto server = listen_stream(reactor, kLoopback, [](Stream s) -> Task<void> {
    auto line = co_await s.read_line(100);
    if (line == "fail") throw std::runtime_error("handler failed on purpose");
    s.write("ok\n");
    co_await s.drain();
  });
  Stream bad = connect(reactor, *server);
  bad.write("fail\n");
  CHECK_FALSE(read_line(reactor, bad));  // the handler's Stream closed the connection
  Stream good = connect(reactor, *server);
  good.write("fine\n");
  CHECK(read_line(reactor, good) == "ok");
  server->close().add_callback([] {});
}

TEST_CASE("listen_stream_close_cancels_handlers_and_waits_for_them") {
  Reactor reactor;
  std::vector<std::string> log;
  auto server = listen_stream(reactor, kLoopback, [&log](Stream s) -> Task<void> {
    try {
      co_await s.read_line(100);
    } catch (const CancelledError&) {
      log.push_back("cancelled");
      s.write("bye\n");  // the connection still works while the handler unwinds
      throw;
    }
  });
  Stream client = connect(reactor, *server);
  wait_for(reactor, [&] { return server->handlers() == 1; }, "the handler");
  bool closed = false;
  server->close().add_callback([&] { closed = true; });
  CHECK(closed);
  CHECK(log == std::vector<std::string>{"cancelled"});
  CHECK(read_line(reactor, client) == "bye");
  CHECK_FALSE(read_line(reactor, client));
  CHECK_FALSE(server->get_host().port() == 0);
}

TEST_CASE("listen_stream_handlers_are_cancelled_at_reactor_shutdown") {
  std::vector<std::string> log;
  {
    Reactor reactor;
    std::weak_ptr<StreamServer> weak;
    {
      auto server = listen_stream(reactor, kLoopback, [&log](Stream s) -> Task<void> {
        try {
          co_await s.read_line(100);
        } catch (const CancelledError&) {
          log.push_back("cancelled");
          throw;
        }
      });
      weak = server;
      Stream client = connect(reactor, *server);
      wait_for(reactor, [&] { return server->handlers() == 1; }, "the handler");
      // `server` is dropped here: the reactor keeps it while it serves.
      reactor.shutdown();
      DelayedCall watchdog = reactor.call_later(torsion::test::kDeadline, [&] { reactor.stop(); });
      reactor.run();
      CHECK(watchdog.active());
      watchdog.cancel();
    }
    CHECK(log == std::vector<std::string>{"cancelled"});
    CHECK(reactor.connection_count() == 0);
    reactor.run_until([] { return false; }, 0.01);  // lets the server forget its trigger
    CHECK(weak.expired());
  }
}
