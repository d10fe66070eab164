// Stream::read_to_end: every byte until the peer's end, bounded.

#include "framework/stream.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "framework/task.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/wait.hpp"
#include "transports/connect_stream.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::wait_for;

namespace {

// Writes `text` and closes (a clean end of stream), or with `reset` aborts after it.
Task<void> send_and_end(Stream s, std::string text, bool reset) {
  s.write(text);
  if (reset) {
    co_await s.drain();
    s.abort();
  } else {
    s.close();
  }
}

struct Server {
  StreamFactory factory;
  std::shared_ptr<ListeningPort> port;
  Server(Reactor& r, std::string text, bool reset = false)
      : factory(r, [text, reset](Stream s) { send_and_end(std::move(s), text, reset); }),
        port(listen_tcp(r, 0, factory, loopback())) {}
  ~Server() { port->stop_listening(); }
};

Stream connect(Reactor& reactor, const Server& server) {
  std::optional<Stream> client;
  connect_stream(reactor, "127.0.0.1", server.port->port()).add_callback([&](Stream s) {
    client.emplace(std::move(s));
  });
  wait_for(reactor, [&] { return client.has_value(); }, "the connection");
  return std::move(*client);
}

// The outcome of `d`, waited for.
Outcome<std::string> outcome_of(Reactor& reactor, Deferred<std::string> d) {
  std::optional<Outcome<std::string>> out;
  d.add_both([&](Outcome<std::string> o) { out.emplace(std::move(o)); });
  wait_for(reactor, [&] { return out.has_value(); }, "the read");
  return std::move(*out);
}

// `n` bytes that show a lost or repeated piece.
std::string numbered(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + i % 23);
  return out;
}

Task<std::string> fetch(Reactor& reactor, int port, std::size_t max) {
  Stream s = co_await connect_stream(reactor, "127.0.0.1", port);
  co_return co_await s.read_to_end(max);
}

}  // namespace

TEST_CASE("stream_read_to_end_gives_every_byte_up_to_the_peers_end") {
  Reactor reactor;
  // More than the stream's 64 KiB read limit: the read asks for room up to its own max.
  const std::string body = numbered(300 * 1000);
  Server server(reactor, body);
  std::optional<std::string> got;
  fetch(reactor, server.port->port(), 1024 * 1024)
      .deferred()
      .add_both([&](Outcome<std::string> o) {
        got = o.ok() ? std::move(o).value() : "failed: " + describe_error(o.error());
      });
  wait_for(reactor, [&] { return got.has_value(); }, "the whole body");
  CHECK(got->size() == body.size());
  CHECK(*got == body);
}

TEST_CASE("stream_read_to_end_takes_exactly_max_bytes_and_fails_past_them") {
  Reactor reactor;
  Server server(reactor, std::string(1000, 'a'));
  Stream at_limit = connect(reactor, server);
  Outcome<std::string> ok = outcome_of(reactor, at_limit.read_to_end(1000));
  REQUIRE(ok.ok());
  CHECK(ok.value() == std::string(1000, 'a'));
  CHECK(at_limit.at_eof());

  Stream over = connect(reactor, server);
  Outcome<std::string> failed = outcome_of(reactor, over.read_to_end(999));
  REQUIRE_FALSE(failed.ok());
  CHECK(error_is<ReadLimitError>(failed.error()));
  CHECK(describe_error(failed.error()) == "stream holds more than 999 bytes before its end");
  // Nothing was consumed: the bytes are still there for read_some.
  CHECK(over.buffered() == 1000);
  CHECK(outcome_of(reactor, over.read_some(10)).value() == "aaaaaaaaaa");
}

TEST_CASE("stream_read_to_end_is_bounded_by_the_read_limit_by_default") {
  Reactor reactor;
  const std::size_t limit = StreamOptions{}.read_limit;
  Server server(reactor, std::string(8 * limit, 'b'));  // a peer that sends too much
  Stream s = connect(reactor, server);
  Outcome<std::string> failed = outcome_of(reactor, s.read_to_end());
  REQUIRE_FALSE(failed.ok());
  try {
    std::rethrow_exception(failed.error());
  } catch (const ReadLimitError& e) {
    CHECK(e.limit() == limit);
  } catch (...) {
    FAIL("not a ReadLimitError: " << describe_error(failed.error()));
  }
  // Reading paused: the buffer holds little more than the limit, not what the peer sent.
  CHECK(s.buffered() > limit);
  CHECK(s.buffered() < 4 * limit);
}

TEST_CASE("stream_read_to_end_fails_with_connection_error_after_a_reset") {
  Reactor reactor;
  Server server(reactor, "", true);
  Stream s = connect(reactor, server);
  Outcome<std::string> failed = outcome_of(reactor, s.read_to_end());
  REQUIRE_FALSE(failed.ok());
  CHECK(error_is<ConnectionError>(failed.error()));
}
