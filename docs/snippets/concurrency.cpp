// docs/concurrency.md: a coroutine server, a TaskGroup with a time-out, a Queue between
// coroutines. With its own test case.
#include <doctest/doctest.h>

#include <optional>
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
