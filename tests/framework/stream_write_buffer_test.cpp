// Stream::write_buffer_size(): what a coroutine server checks before writing to a member
// of a room. Stream::transport() throws once a connection is gone, so a broadcast that
// asked it of a member whose peer had just reset failed the broadcasting handler and
// closed the sender's connection too.
#include "framework/stream.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "framework/task.hpp"
#include "transports/connect_stream.hpp"
#include "transports/listen_stream.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::wait_for;

namespace {

// Connects a client Stream to `port` and hands it to `out`.
void connect_into(Reactor& reactor, int port, std::optional<Stream>& out) {
  connect_stream(reactor, "127.0.0.1", port).add_callback([&out](Stream s) {
    out.emplace(std::move(s));
  });
}

}  // namespace

TEST_CASE("Stream::write_buffer_size: the unsent bytes while connected, 0 and no throw once gone") {
  Reactor reactor;
  std::optional<Stream> served;  // the server's side, kept here
  bool handler_ended = false;
  auto server = listen_stream(reactor, "tcp:0:interface=127.0.0.1",
                              [&](Stream s) -> Task<void> {
                                s.write(std::string(16 << 20, 'x'));  // the client never reads
                                served.emplace(std::move(s));
                                handler_ended = true;
                                co_return;
                              });
  std::optional<Stream> client;
  connect_into(reactor, static_cast<int>(server->port()), client);
  wait_for(reactor, [&] { return client.has_value() && handler_ended; }, "the connection");
  REQUIRE(served->connected());
  CHECK(served->write_buffer_size() > 0);
  CHECK(served->write_buffer_size() == served->transport().buffer_size());

  client->abort();  // a reset: the server's side is lost with 16 MiB unsent
  wait_for(reactor, [&] { return !served->connected() && served->lost_reason(); }, "the loss");
  CHECK_THROWS_AS(served->transport(), std::logic_error);
  CHECK(served->write_buffer_size() == 0);  // no throw, nothing left to send
  CHECK(Stream().write_buffer_size() == 0);
  server->close();
  served.reset();
  client.reset();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}

TEST_CASE("a coroutine room: a member that resets does not end the others' handlers") {
  Reactor reactor;
  struct Room {
    std::set<Stream*> members;
    void broadcast(const std::string& line, Stream* from) {
      for (Stream* m : members)
        if (m != from && m->write_buffer_size() <= 64 * 1024) m->write(line);
    }
  } room;
  int failed = 0, ended = 0;
  auto server = listen_stream(
      reactor, "tcp:0:interface=127.0.0.1", [&](Stream s) -> Task<void> {
        room.members.insert(&s);
        try {
          while (auto line = co_await s.read_line(256)) room.broadcast(*line + "\n", &s);
        } catch (const ConnectionError&) {
          // this member reset
        } catch (...) {
          ++failed;
        }
        room.members.erase(&s);
        ++ended;
      });
  const int port = static_cast<int>(server->port());
  std::optional<Stream> a, b, c;
  connect_into(reactor, port, a);
  connect_into(reactor, port, b);
  connect_into(reactor, port, c);
  wait_for(reactor, [&] { return a && b && c && room.members.size() == 3; }, "three members");

  // a resets. Its member Stream hears the loss at once, while a's handler wakes
  // only on a later turn of the loop: a broadcast in between meets a member that is gone.
  a->abort();
  const auto gone = [&] {
    for (Stream* m : room.members)
      if (m->lost_reason()) return true;
    return false;
  };
  wait_for(reactor, gone, "the server to see a's reset");
  REQUIRE(room.members.size() == 3);  // a's handler has not left the room yet
  CHECK_NOTHROW(room.broadcast("one\n", nullptr));
  std::optional<std::string> heard;
  c->read_line(256).add_callback([&](std::optional<std::string> l) { heard = l; });
  wait_for(reactor, [&] { return heard.has_value(); }, "c to hear the broadcast");
  CHECK(*heard == "one");
  wait_for(reactor, [&] { return ended == 1; }, "a's handler to end");
  CHECK(room.members.size() == 2);
  std::optional<std::string> b_heard;
  b->read_line(256).add_callback([&](std::optional<std::string> l) { b_heard = l; });
  wait_for(reactor, [&] { return b_heard.has_value(); }, "b to hear the broadcast");
  CHECK(*b_heard == "one");
  b->write("two\n");
  heard.reset();
  c->read_line(256).add_callback([&](std::optional<std::string> l) { heard = l; });
  wait_for(reactor, [&] { return heard.has_value(); }, "c to hear b again");
  CHECK(*heard == "two");
  CHECK(failed == 0);
  CHECK(b->connected());
  CHECK(c->connected());
  b->close();
  c->close();
  wait_for(reactor, [&] { return ended == 3; }, "every handler to end");
  CHECK(failed == 0);
  server->close();
  a.reset();
  b.reset();
  c.reset();
  wait_for(reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
}
