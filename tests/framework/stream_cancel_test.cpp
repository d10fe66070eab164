// Cancelling a Stream read (Task::cancel, a TaskGroup, with_timeout) consumes nothing:
// the stream stays usable with every byte still buffered, or, when the coroutine that
// owns it ends, it is clearly closed.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "framework/task_group.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// A server whose one accepted Stream the test drives by hand.
struct HeldServer {
  std::optional<Stream> accepted;
  StreamFactory factory;
  std::shared_ptr<ListeningPort> port;
  explicit HeldServer(Reactor& r)
      : factory(r, [this](Stream s) { accepted.emplace(std::move(s)); }),
        port(listen_tcp(r, 0, factory, loopback())) {}
  ~HeldServer() { port->stop_listening(); }
};

Stream connect(Reactor& reactor, HeldServer& server) {
  std::optional<Stream> client;
  connect_stream(reactor, "127.0.0.1", server.port->port()).add_callback([&](Stream s) {
    client.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return client && server.accepted; }, "the connection");
  return std::move(*client);
}

}  // namespace

TEST_CASE("a_cancelled_read_line_leaves_the_partial_line_buffered") {
  Reactor reactor;
  HeldServer server(reactor);
  Stream client = connect(reactor, server);
  server.accepted->write("par");
  wait_for(reactor, [&] { return client.buffered() == 3; }, "the first bytes");

  auto reader = [](Stream& s) -> Task<std::optional<std::string>> { co_return co_await s.read_line(100); };
  Task<std::optional<std::string>> first = reader(client);
  reactor.run_until([] { return false; }, 0.05);  // the read looks at "par" and waits
  CHECK_FALSE(first.done());
  first.cancel();
  REQUIRE(first.done());
  CHECK(client.buffered() == 3);  // nothing was consumed
  first.deferred().add_errback([](std::exception_ptr e) {
    CHECK(error_is<CancelledError>(e));
    return std::optional<std::string>();
  });

  server.accepted->write("tial\nnext\n");
  Task<std::optional<std::string>> second = reader(client);
  std::optional<std::string> line;
  second.deferred().add_callback([&](std::optional<std::string> l) { line = l; });
  wait_for(reactor, [&] { return line.has_value(); }, "the whole line");
  CHECK(*line == "partial");
  CHECK(client.connected());
}

TEST_CASE("a_cancelled_read_exactly_consumes_nothing") {
  Reactor reactor;
  HeldServer server(reactor);
  Stream client = connect(reactor, server);
  server.accepted->write("1234");
  wait_for(reactor, [&] { return client.buffered() == 4; }, "four bytes");

  TaskGroup group;
  group.spawn([&client]() -> Task<void> { co_await client.read_exactly(8); });
  reactor.run_until([] { return false; }, 0.05);
  CHECK(group.size() == 1);
  group.cancel();
  CHECK(group.size() == 0);
  CHECK(client.buffered() == 4);
  bool cancelled = false;
  group.join().add_errback([&](std::exception_ptr e) { cancelled = error_is<CancelledError>(e); });
  CHECK(cancelled);

  server.accepted->write("5678");
  std::string got;
  client.read_exactly(8).add_callback([&](std::string s) { got = s; });
  wait_for(reactor, [&] { return !got.empty(); }, "eight bytes");
  CHECK(got == "12345678");
}

TEST_CASE("a_cancelled_coroutine_owning_its_stream_closes_it_cleanly") {
  Reactor reactor;
  HeldServer server(reactor);
  Stream client = connect(reactor, server);
  // The server's handler owns its stream; cancelling it ends the coroutine, whose
  // Stream then closes the connection: the peer sees a clean end, not a half-read line.
  Task<void> handler = [](Stream s) -> Task<void> {
    for (;;) {
      auto line = co_await s.read_line(100);
      if (!line) break;
      s.write(*line + "!\n");
    }
  }(std::move(*server.accepted));
  client.write("one\ntw");
  std::optional<std::string> echoed;
  client.read_line(100).add_callback([&](std::optional<std::string> l) { echoed = l; });
  wait_for(reactor, [&] { return echoed.has_value(); }, "the first answer");
  CHECK(*echoed == "one!");
  handler.cancel();
  REQUIRE(handler.done());
  std::optional<std::string> after = std::string("unset");
  client.read_line(100).add_callback([&](std::optional<std::string> l) { after = l; });
  wait_for(reactor, [&] { return !after.has_value(); }, "the end of the stream");
  CHECK(client.at_eof());
  handler.deferred().add_errback([](std::exception_ptr e) { CHECK(error_is<CancelledError>(e)); });
}
