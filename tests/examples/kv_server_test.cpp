#include "examples/kv_server.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/protocols/splitting.hpp"

using torsion::examples::KvFactory;
using torsion::examples::KvServer;
using torsion::examples::KvStore;
using torsion::examples::resp::Limits;
using torsion::test::Feeder;
using torsion::test::for_every_cut;
using torsion::testing::ManualClock;
using torsion::testing::StringTransport;

namespace {

// One connection to a store on a manual clock.
struct Client {
  explicit Client(KvStore& store, Limits limits = {}) : server(store, limits) {
    transport.connect(server);
  }
  std::string send(std::string_view request) {
    transport.receive(request);
    return transport.take();
  }
  KvServer server;
  StringTransport transport;
};

}  // namespace

TEST_CASE("kv_server: keys with EX or PX expire on the clock's timers") {
  ManualClock clock;
  KvStore store(clock);
  Client c(store);
  CHECK(c.send("SET a 1 PX 1500\r\nSET b 2 EX 1\r\nSET c 3\r\n") == "+OK\r\n+OK\r\n+OK\r\n");
  clock.advance(0.999);
  CHECK(c.send("MGET a b c\r\n") == "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
  clock.advance(0.001);  // b's timer runs and removes it
  CHECK(store.size() == 2);
  CHECK(c.send("GET b\r\nEXISTS a b c\r\n") == "$-1\r\n:2\r\n");
  clock.advance(0.5);
  CHECK(store.size() == 1);
  CHECK(c.send("GET a\r\n") == "$-1\r\n");
}

TEST_CASE("kv_server: SET without EX drops a time to live, INCR keeps it, DEL cancels it") {
  ManualClock clock;
  KvStore store(clock);
  Client c(store);
  CHECK(c.send("SET a 1 EX 10\r\nSET a 2\r\nSET n 1 EX 10\r\nINCR n\r\nSET d 1 EX 5\r\n") ==
        "+OK\r\n+OK\r\n+OK\r\n:2\r\n+OK\r\n");
  CHECK(c.send("DEL d\r\nSET d x\r\n") == ":1\r\n+OK\r\n");
  CHECK(clock.pending_calls().size() == 1);  // only n's
  clock.advance(10);
  CHECK(c.send("MGET a n d\r\n") == "*3\r\n$1\r\n2\r\n$-1\r\n$1\r\nx\r\n");
  CHECK(c.send("SET r 1 EX 10\r\nSET r 2 EX 20\r\n") == "+OK\r\n+OK\r\n");
  clock.advance(15);  // the second EX moved the same timer
  CHECK(c.send("GET r\r\n") == "$1\r\n2\r\n");
}

TEST_CASE("kv_server: replies are the same however the requests are cut") {
  const std::string input =
      "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n"
      "GET key\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\nINCR n\r\n\r\n*0\r\n"
      "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\nMGET key n none\r\nEXISTS key\r\n";
  const std::string want =
      "+OK\r\n$5\r\nva\r\nl\r\n$0\r\n\r\n:1\r\n:2\r\n*3\r\n$5\r\nva\r\nl\r\n$1\r\n2\r\n$-1\r\n:1\r\n";
  ManualClock clock;
  KvFactory factory(clock);
  for_every_cut<KvServer>(
      input,
      [&] {
        factory.store().del("key");
        factory.store().del("n");
        return std::make_unique<KvServer>(factory.store());
      },
      [&](KvServer&, StringTransport& t, Feeder&) {
        CHECK(t.value() == want);
        CHECK(t.connected());
      });
}

TEST_CASE("kv_server: every length has a limit, answered as redis-server does") {
  ManualClock clock;
  KvStore store(clock);
  const Limits small{.max_inline = 16, .max_bulk = 8, .max_args = 3, .max_request = 100};
  {
    Client c(store, small);
    CHECK(c.send("*1\r\n$9\r\n") == "-ERR Protocol error: invalid bulk length\r\n");
    CHECK(c.transport.disconnecting());
  }
  {
    Client c(store, small);
    CHECK(c.send("*4\r\n") == "-ERR Protocol error: invalid multibulk length\r\n");
    CHECK(c.transport.disconnecting());
  }
  {
    Client c(store, small);
    CHECK(c.send(std::string(20, 'x')) == "-ERR Protocol error: too big inline request\r\n");
    CHECK(c.transport.disconnecting());
  }
  {
    Client c(store, small);
    CHECK(c.send("*" + std::string(20, '1')) ==
          "-ERR Protocol error: too big mbulk count string\r\n");
  }
  {
    Client c(store, small);
    CHECK(c.send("*1\r\n$" + std::string(20, '1')) ==
          "-ERR Protocol error: too big bulk count string\r\n");
  }
  {
    // 3 arguments of 8 bytes and 32 bytes each of bookkeeping: over 100, closed silently.
    Client c(store, small);
    CHECK(c.send("*3\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$8\r\n").empty());
    CHECK(c.transport.disconnecting());
  }
  {
    Client c(store, small);
    CHECK(c.send("*2\r\n$4\r\nECHO\r\n$8\r\n12345678\r\n") == "$8\r\n12345678\r\n");
    CHECK(c.transport.connected());
  }
}

TEST_CASE("kv_server: a huge multibulk count reserves nothing before its arguments come") {
  ManualClock clock;
  KvStore store(clock);
  Client c(store);
  CHECK(c.send("*1048576\r\n$4\r\nECHO\r\n").empty());
  CHECK(c.server.buffered_size() == 0);
  CHECK(c.transport.connected());
}
