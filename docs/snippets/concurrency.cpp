// docs/concurrency.md: a coroutine server, a TaskGroup with a time-out, a Queue between
// coroutines. With its own test case.
#include <doctest/doctest.h>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "framework/cancel.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/sync.hpp"
#include "framework/task.hpp"
#include "framework/task_group.hpp"
#include "framework/testing/manual_clock.hpp"
#include "transports/listen_stream.hpp"
#include "transports/connect_stream.hpp"

namespace docs {
namespace {

// [snippet:room]
// A chat room of coroutines: each member's handler writes the lines it reads to the
// others. A member more than 64 KiB behind is dropped; one silent for `idle` seconds is
// told so and closed; "/quit" leaves.
struct Room {
  std::set<torsion::Stream*> members;
  void broadcast(const std::string& line, const torsion::Stream* from) {
    for (torsion::Stream* member : members) {
      if (member == from) continue;
      if (member->write_buffer_size() > 64 * 1024)  // 0 for a member already gone
        member->abort();  // its handler wakes with ConnectionError and leaves
      else
        member->write(line);
    }
  }
};

torsion::Task<void> chat(Room& room, torsion::Scheduler& clock, double idle, torsion::Stream s) {
  struct Membership {  // in the room while this handler runs, however it ends
    Room& room;
    torsion::Stream* member;
    Membership(Room& r, torsion::Stream* m) : room(r), member(m) { room.members.insert(member); }
    ~Membership() { room.members.erase(member); }
  } membership(room, &s);
  try {
    while (auto line = co_await torsion::with_timeout(clock, idle, s.read_line(512))) {
      if (*line == "/quit") break;
      room.broadcast(*line + "\n", &s);
    }
    s.write("bye\n");
  } catch (const torsion::TimeoutError&) {
    s.write("idle, bye\n");  // the read was cancelled: nothing of the stream was lost
  } catch (const torsion::ConnectionError&) {
    // the peer reset, or broadcast() dropped it
  }  // anything else (a line over 512 bytes) is logged by listen_stream
}  // s closes the connection (after "bye") as the handler ends
// [end]

// [snippet:task-group-timeout]
torsion::Task<std::string> lookup(torsion::Scheduler& clock, std::string key, double seconds) {
  co_await torsion::sleep(clock, seconds);
  co_return key + "=found";
}

torsion::Task<std::vector<std::string>> lookup_all(torsion::Scheduler& clock) {
  std::vector<std::string> found;
  torsion::TaskGroup group;
  for (auto [key, seconds] : {std::pair{"a", 1.0}, std::pair{"b", 2.0}, std::pair{"c", 60.0}})
    group.spawn([&found, &clock, key = std::string(key), s = seconds]() -> torsion::Task<void> {
      found.push_back(co_await lookup(clock, key, s));
    });
  try {
    co_await torsion::with_timeout(clock, 5, group.join());  // cancels "c" after 5 s
  } catch (const torsion::TimeoutError&) {
    found.push_back("timed out");  // every child has ended by now
  }
  co_return found;
}
// [end]

// [snippet:queue]
torsion::Task<void> produce(torsion::Queue<std::string>& queue) {
  for (std::string word : {"alpha", "beta", "gamma", "delta"})
    co_await queue.put(word);  // waits while the queue is full
  co_await queue.put("");      // the end
}

torsion::Task<std::size_t> consume(torsion::Queue<std::string>& queue, torsion::Scheduler& clock) {
  std::size_t letters = 0;
  for (std::string word; !(word = co_await queue.get()).empty();) {
    letters += word.size();
    co_await torsion::sleep(clock, 1);  // a slow consumer holds the producer back
  }
  co_return letters;
}
// [end]

}  // namespace
}  // namespace docs

TEST_CASE("docs_concurrency_coroutine_server") {
  torsion::Reactor reactor;
  // [snippet:listen-stream]
  auto server = torsion::listen_stream(
      reactor, "tcp:0:interface=127.0.0.1",
      [greeting = std::string("hello, ")](torsion::Stream s) -> torsion::Task<void> {
        while (auto name = co_await s.read_line(256)) {
          s.write(greeting + *name + "\n");  // the lambda's captures live as long as this
          co_await s.drain();
        }
      });  // at most 1024 handlers at once, 64 more connections wait, then refused
  // [end]
  std::optional<std::string> reply;
  [](torsion::Reactor& r, int port, std::optional<std::string>& out) -> torsion::Task<void> {
    torsion::Stream s = co_await torsion::connect_stream(r, "127.0.0.1", port);
    s.write("world\n");
    out = (co_await s.read_line(256)).value_or("<none>");
  }(reactor, server->port(), reply);
  REQUIRE(reactor.run_until([&] { return reply.has_value(); }, 10));
  CHECK(*reply == "hello, world");
  bool closed = false;
  server->close().add_callback([&] { closed = true; });
  CHECK(closed);
}

TEST_CASE("docs_concurrency_room") {
  torsion::Reactor reactor;
  torsion::testing::ManualClock clock;  // the idle time-out's clock
  docs::Room room;
  // [snippet:room-listen]
  auto server = torsion::listen_stream(
      reactor, "tcp:0:interface=127.0.0.1",
      [&room, &clock](torsion::Stream s) { return docs::chat(room, clock, 300, std::move(s)); });
  // [end]
  std::optional<torsion::Stream> a, b;
  const auto join = [&](std::optional<torsion::Stream>& out) {
    torsion::connect_stream(reactor, "127.0.0.1", server->port())
        .add_callback([&out](torsion::Stream s) { out.emplace(std::move(s)); });
  };
  join(a);
  join(b);
  REQUIRE(reactor.run_until([&] { return a && b && room.members.size() == 2; }, 10));
  const auto read_line = [&](torsion::Stream& s) {
    std::optional<std::optional<std::string>> got;
    s.read_line(512).add_callback([&got](std::optional<std::string> l) { got = l; });
    REQUIRE(reactor.run_until([&] { return got.has_value(); }, 10));
    return *got;
  };
  a->write("hello\n");
  CHECK(read_line(*b) == "hello");
  a->write("/quit\n");
  CHECK(read_line(*a) == "bye");
  CHECK(read_line(*a) == std::nullopt);  // the server closed a's connection
  CHECK(room.members.size() == 1);
  clock.advance(299);
  CHECK(room.members.size() == 1);
  clock.advance(1);  // b has been silent for 300 s
  CHECK(read_line(*b) == "idle, bye");
  CHECK(read_line(*b) == std::nullopt);
  CHECK(room.members.empty());
  CHECK(clock.pending_count() == 0);
  server->close();
}

TEST_CASE("docs_concurrency_task_group_and_queue") {
  torsion::testing::ManualClock clock;
  std::vector<std::string> found;
  docs::lookup_all(clock).deferred().add_callback([&](std::vector<std::string> f) { found = f; });
  clock.advance(5);
  CHECK(found == std::vector<std::string>{"a=found", "b=found", "timed out"});
  CHECK(clock.pending_count() == 0);

  // [snippet:queue-use]
  torsion::Queue<std::string> queue(2);  // at most two words in flight
  torsion::Task<std::size_t> consumer = docs::consume(queue, clock);
  torsion::Task<void> producer = docs::produce(queue);
  // [end]
  std::size_t letters = 0;
  consumer.deferred().add_callback([&](std::size_t n) { letters = n; });
  for (int i = 0; i < 4; ++i) clock.advance(1);
  CHECK(producer.done());
  CHECK(letters == 19);
}
