#include "framework/stream.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/task.hpp"
#include "transports/tcp.hpp"
#include "transports/connect_stream.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// Echoes until the peer ends, then closes.
Task<void> echo(Stream s) {
  try {
    for (;;) {
      std::string data = co_await s.read_some();
      if (data.empty()) break;
      s.write(data);
    }
  } catch (const ConnectionError&) {
    // the client aborted: nothing to close
  }
  s.close();
}

// Writes `text` and closes.
Task<void> send_and_close(Stream s, std::string text) {
  s.write(text);
  s.close();
  co_return;
}

struct Server {
  Reactor& reactor;
  StreamFactory factory;
  std::shared_ptr<ListeningPort> port;
  Server(Reactor& r, StreamProtocol::Ready handler)
      : reactor(r), factory(r, std::move(handler)), port(listen_tcp(r, 0, factory, loopback())) {}
  ~Server() { port->stop_listening(); }
  int number() const { return port->port(); }
};

Task<std::string> echo_client(Reactor& reactor, int port, std::string message) {
  Stream s = co_await connect_stream(reactor, "127.0.0.1", port);
  s.write(message);
  std::string reply = co_await s.read_exactly(message.size());
  s.close();
  co_return reply;
}

template <class T>
std::optional<T> result_of(Reactor& reactor, Task<T> task, const char* what) {
  std::optional<T> out;
  bool done = false;
  task.deferred().add_both([&](Outcome<T> o) {
    done = true;
    if (o.ok()) out = std::move(o).value();
    else FAIL_CHECK("task failed: " << describe_error(o.error()));
  });
  wait_for(reactor, [&] { return done; }, what);
  return out;
}

}  // namespace

TEST_CASE("stream_coroutine_echo_round_trip") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { echo(std::move(s)); });
  auto reply = result_of(reactor, echo_client(reactor, server.number(), "hello, coroutines"),
                         "the echo");
  CHECK(reply == "hello, coroutines");
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "both ends to close");
}

TEST_CASE("stream_read_line_splits_and_strips_and_ends") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { send_and_close(std::move(s), "one\r\ntwo\n\nlast"); });
  auto lines = result_of(
      reactor,
      [](Reactor& r, int port) -> Task<std::vector<std::string>> {
        Stream s = co_await connect_stream(r, "127.0.0.1", port);
        std::vector<std::string> got;
        while (auto line = co_await s.read_line(100)) got.push_back(*line);
        got.push_back(s.at_eof() ? "<eof>" : "<not eof>");
        co_return got;
      }(reactor, server.number()),
      "the lines");
  REQUIRE(lines);
  CHECK(*lines == std::vector<std::string>{"one", "two", "", "last", "<eof>"});
}

TEST_CASE("stream_read_line_too_long_leaves_the_bytes") {
  Reactor reactor;
  const std::string longline(50, 'x');
  Server server(reactor, [&](Stream s) { send_and_close(std::move(s), longline + "\nok\n"); });
  auto got = result_of(
      reactor,
      [](Reactor& r, int port) -> Task<std::string> {
        Stream s = co_await connect_stream(r, "127.0.0.1", port);
        std::string report;
        try {
          co_await s.read_line(10);
        } catch (const LineTooLongError& e) {
          report = "too long (" + std::to_string(e.limit()) + ")";
        }
        std::string skipped = co_await s.read_exactly(51);  // the long line and its "\n"
        report += " skipped " + std::to_string(skipped.size());
        auto next = co_await s.read_line(10);
        report += " then " + next.value_or("<none>");
        co_return report;
      }(reactor, server.number()),
      "the long line");
  CHECK(got == "too long (10) skipped 51 then ok");
}

TEST_CASE("stream_read_line_exactly_at_the_limit") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { send_and_close(std::move(s), "12345\r\n123456\n"); });
  auto got = result_of(
      reactor,
      [](Reactor& r, int port) -> Task<std::string> {
        Stream s = co_await connect_stream(r, "127.0.0.1", port);
        std::string first = (co_await s.read_line(5)).value();
        try {
          co_await s.read_line(5);
          co_return "no error";
        } catch (const LineTooLongError&) {
          co_return first + " then too long";
        }
      }(reactor, server.number()),
      "lines at the limit");
  CHECK(got == "12345 then too long");
}

TEST_CASE("stream_read_exactly_incomplete_with_deferreds") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { send_and_close(std::move(s), "abcde"); });
  auto holder = std::make_shared<Stream>();
  std::string partial;
  bool done = false;
  connect_stream(reactor, "127.0.0.1", server.number())
      .add_callback([holder](Stream s) {
        *holder = std::move(s);
        return holder->read_exactly(10);
      })
      .add_errback([&](std::exception_ptr e) {
        try {
          std::rethrow_exception(e);
        } catch (const IncompleteReadError& err) {
          partial = err.partial();
          CHECK(err.expected() == 10);
        }
        return std::string();
      })
      .add_both([&](Outcome<std::string>) { done = true; });
  wait_for(reactor, [&] { return done; }, "the short read");
  CHECK(partial == "abcde");
}

TEST_CASE("stream_one_read_at_a_time") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { echo(std::move(s)); });
  std::optional<Stream> stream;
  connect_stream(reactor, "127.0.0.1", server.number()).add_callback([&](Stream s) {
    stream.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return stream.has_value(); }, "the connection");
  auto first = stream->read_some();
  CHECK_THROWS_WITH_AS(stream->read_line(), doctest::Contains("already pending"), std::logic_error);
  CHECK_THROWS_AS(stream->read_some(0), std::invalid_argument);
  stream->write("x");
  std::string got;
  first.add_callback([&](std::string d) { got = d; });
  wait_for(reactor, [&] { return !got.empty(); }, "the echo");
  CHECK(got == "x");
  stream->close();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "closing");
}

TEST_CASE("stream_cancel_read_keeps_data_for_the_next_read") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { echo(std::move(s)); });
  std::optional<Stream> stream;
  connect_stream(reactor, "127.0.0.1", server.number()).add_callback([&](Stream s) {
    stream.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return stream.has_value(); }, "the connection");
  auto pending = stream->read_exactly(4);
  bool cancelled = false;
  CHECK(pending.cancel());
  pending.add_errback([&](std::exception_ptr e) {
    cancelled = error_is<CancelledError>(e);
    return std::string();
  });
  CHECK(cancelled);
  stream->write("abcd");
  std::string got;
  stream->read_exactly(4).add_callback([&](std::string d) { got = d; });
  wait_for(reactor, [&] { return !got.empty(); }, "the echo");
  CHECK(got == "abcd");
}

TEST_CASE("stream_task_cancel_cancels_the_pending_read") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { echo(std::move(s)); });
  bool reading = false;
  auto t = [](Reactor& r, int port, bool& flag) -> Task<std::string> {
    Stream s = co_await connect_stream(r, "127.0.0.1", port);
    flag = true;
    co_return co_await s.read_some();  // the server sends nothing
  }(reactor, server.number(), reading);
  wait_for(reactor, [&] { return reading; }, "the read to start");
  t.cancel();
  bool cancelled = false;
  t.deferred().add_errback([&](std::exception_ptr e) {
    cancelled = error_is<CancelledError>(e);
    return std::string();
  });
  CHECK(cancelled);
  // The coroutine ended, its Stream went out of scope and closed the connection.
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "both ends to close");
}

TEST_CASE("stream_connect_refused_is_a_connection_error") {
  Reactor reactor;
  int closed_port = 0;
  {
    Server server(reactor, [](Stream) {});
    closed_port = server.number();
  }
  bool refused = false;
  bool done = false;
  connect_stream(reactor, "127.0.0.1", closed_port).add_both([&](Outcome<Stream> o) {
    done = true;
    try {
      o.value();
    } catch (const ConnectionError& e) {
      refused = e.reason().is(error::connection_refused);
    }
  });
  wait_for(reactor, [&] { return done; }, "the refusal");
  CHECK(refused);
}

TEST_CASE("stream_unclean_loss_fails_the_read") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { s.abort(); });
  auto t = [](Reactor& r, int port) -> Task<std::string> {
    Stream s = co_await connect_stream(r, "127.0.0.1", port);
    try {
      std::string d = co_await s.read_some();
      co_return "read '" + d + "'";
    } catch (const ConnectionError& e) {
      co_return "lost: " + std::string(e.reason().is(error::connection_lost) ? "yes" : "other");
    }
  }(reactor, server.number());
  auto got = result_of(reactor, t, "the loss");
  CHECK(got == "lost: yes");
}

TEST_CASE("stream_drain_waits_for_the_peer_to_read") {
  Reactor reactor;
  Deferred<void> go;
  std::size_t server_got = 0;
  const std::size_t total = 16 * 1024 * 1024;
  auto reader = [](Stream s, Deferred<void> start, std::size_t* counter) -> Task<void> {
    co_await start;
    for (;;) {
      std::string d = co_await s.read_some();
      if (d.empty()) break;
      *counter += d.size();
    }
  };
  Server server(reactor, [&](Stream s) { reader(std::move(s), go, &server_got); });
  std::optional<Stream> stream;
  connect_stream(reactor, "127.0.0.1", server.number()).add_callback([&](Stream s) {
    stream.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return stream.has_value() && reactor.connection_count() == 2; },
           "the connection");
  stream->transport().set_write_buffer_limits(64 * 1024, 16 * 1024);
  stream->write(std::string(total, 'z'));
  CHECK(stream->transport().buffer_size() > 64 * 1024);
  auto drained = stream->drain();
  // Let the loop turn a few times: the peer reads nothing yet, so drain must wait.
  int turns = 0;
  reactor.run_until([&] { return ++turns > 20; }, 0.05);
  CHECK_FALSE(drained.called());
  go.callback();
  wait_for(reactor, [&] { return drained.called(); }, "the drain");
  CHECK(stream->transport().buffer_size() <= 16 * 1024);
  stream->close();
  wait_for(reactor, [&] { return server_got == total; }, "every byte");
  drained.add_callback([] {});
}

TEST_CASE("stream_drain_is_immediate_below_the_mark_and_fails_after_loss") {
  Reactor reactor;
  Server server(reactor, [](Stream s) { echo(std::move(s)); });
  std::optional<Stream> stream;
  connect_stream(reactor, "127.0.0.1", server.number()).add_callback([&](Stream s) {
    stream.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return stream.has_value(); }, "the connection");
  stream->write("small");
  CHECK(stream->drain().called());
  stream->abort();
  wait_for(reactor, [&] { return stream->lost_reason().has_value(); }, "the abort");
  bool failed = false;
  stream->drain().add_errback([&](std::exception_ptr e) { failed = error_is<ConnectionError>(e); });
  CHECK(failed);
  CHECK_THROWS_AS(stream->transport(), std::logic_error);
}
