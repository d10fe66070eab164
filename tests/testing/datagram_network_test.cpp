#include "framework/testing/datagram_network.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "framework/delayed_call.hpp"
#include "framework/testing/manual_clock.hpp"
#include "tests/support/datagram_recording.hpp"

using torsion::Address;
using torsion::DatagramProtocol;
using torsion::DelayedCall;
using torsion::test::DatagramRecording;
using torsion::testing::Datagram;
using torsion::testing::DatagramNetwork;
using torsion::testing::DatagramNetworkOptions;
using torsion::testing::ManualClock;
using torsion::testing::MemoryDatagramTransport;

namespace {

const Address kServer = Address::ip("127.0.0.1", 5353);

void echo(DatagramRecording& r, std::string_view data, const Address& from) {
  r.transport().write(data, from);
}

}  // namespace

TEST_CASE("two endpoints exchange datagrams through the pump") {
  DatagramNetwork net;
  DatagramRecording server, client;
  server.on_datagram = echo;
  MemoryDatagramTransport& s = net.bind(server, kServer);
  MemoryDatagramTransport& c = net.bind(client, Address::ip("127.0.0.1", 0));
  CHECK(server.started == 1);
  CHECK(c.get_host() == Address::ip("127.0.0.1", 32768));  // the first ephemeral port
  client.transport().write("ping", kServer);
  CHECK(server.received.empty());  // nothing moves inside write
  CHECK(net.in_flight() == 1);
  CHECK(net.pump());
  REQUIRE(server.received.size() == 1);
  CHECK(server.received[0].from == c.get_host());
  REQUIRE(client.received.size() == 1);
  CHECK(client.received[0].data == "ping");
  CHECK(client.received[0].from == s.get_host());
  CHECK(net.delivered() == 2);
  CHECK(net.lost() == 0);
  CHECK_FALSE(net.pump());
}

TEST_CASE("nothing listening: lost, and refused only for a connected sender") {
  DatagramNetwork net;
  DatagramRecording a, b;
  net.bind(a, Address::ip("127.0.0.1", 0));
  MemoryDatagramTransport& tb = net.bind(b, Address::ip("127.0.0.1", 0));
  a.transport().write("into the void", Address::ip("127.0.0.1", 9));
  net.pump();
  CHECK(a.refused == 0);
  CHECK(net.lost() == 1);
  tb.connect(Address::ip("127.0.0.1", 9));
  b.transport().write("anyone?");
  net.pump();
  CHECK(b.refused == 1);
  CHECK(tb.listening());  // a refusal does not close the endpoint
}

TEST_CASE("stop_listening: stopped_listening from the next step, then refusals") {
  DatagramNetwork net;
  DatagramRecording server, client;
  MemoryDatagramTransport& s = net.bind(server, kServer);
  MemoryDatagramTransport& c = net.bind(client, Address::ip("127.0.0.1", 0));
  c.connect(kServer);
  s.stop_listening();
  CHECK(server.stopped == 0);
  client.transport().write("late");
  net.pump();
  CHECK(server.stopped == 1);
  CHECK(server.received.empty());
  CHECK(client.refused == 1);
  DatagramRecording again;  // the address is free again
  net.bind(again, kServer);
  client.transport().write("now");
  net.pump();
  CHECK(again.payloads() == std::vector<std::string>{"now"});
}

TEST_CASE("bind: address in use, wildcard addresses, ephemeral ports") {
  DatagramNetwork net;
  DatagramRecording a, b, c, d;
  net.bind(a, Address::ip("0.0.0.0", 7000));
  CHECK_THROWS_AS(net.bind(b, Address::ip("127.0.0.1", 7000)), std::system_error);
  CHECK(b.started == 0);
  CHECK_THROWS_AS(net.bind(b, Address::ip("localhost", 7000)), std::invalid_argument);
  MemoryDatagramTransport& tc = net.bind(c, Address::ip("0.0.0.0", 0));
  c.transport().write("to any local address", Address::ip("127.0.0.1", 7000));
  net.pump();
  REQUIRE(a.received.size() == 1);
  CHECK(a.received[0].from == Address::ip("127.0.0.1", tc.port()));  // sent from loopback
  MemoryDatagramTransport& td = net.bind(d, Address::ip("127.0.0.1", 0));
  CHECK(td.port() != tc.port());
}

TEST_CASE("IPv6 endpoints talk to each other, not to IPv4 ones") {
  DatagramNetwork net;
  DatagramRecording six, four, sender;
  net.bind(six, Address::ip("::1", 8000));
  net.bind(four, Address::ip("127.0.0.1", 8000));  // another family: no conflict
  MemoryDatagramTransport& s = net.bind(sender, Address::ip("::", 0));
  sender.transport().write("v6", Address::ip("::1", 8000));
  net.pump();
  REQUIRE(six.received.size() == 1);
  CHECK(six.received[0].from == Address::ip("::1", s.port()));
  CHECK(four.received.empty());
}

TEST_CASE("random loss is reproducible from the seed") {
  auto survivors = [](std::uint32_t seed) {
    DatagramNetworkOptions o;
    o.seed = seed;
    o.loss = 0.3;
    DatagramNetwork net(o);
    DatagramRecording rx, tx;
    net.bind(rx, kServer);
    net.bind(tx, Address::ip("127.0.0.1", 0));
    for (int i = 0; i < 1000; ++i) tx.transport().write(std::to_string(i), kServer);
    net.pump();
    CHECK(net.lost() + net.delivered() == 1000);
    return rx.payloads();
  };
  const auto a = survivors(1), b = survivors(1), c = survivors(2);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a.size() > 600);
  CHECK(a.size() < 800);
}

TEST_CASE("duplication delivers copies once, reorder shuffles, all deterministic") {
  DatagramNetworkOptions o;
  o.duplication = 1;
  DatagramNetwork dup(o);
  DatagramRecording rx, tx;
  dup.bind(rx, kServer);
  dup.bind(tx, Address::ip("127.0.0.1", 0));
  tx.transport().write("a", kServer);
  tx.transport().write("b", kServer);
  dup.pump();
  CHECK(rx.payloads() == std::vector<std::string>{"a", "b", "a", "b"});

  DatagramNetworkOptions r;
  r.reorder = true;
  r.seed = 3;
  DatagramNetwork shuffled(r);
  DatagramRecording rx2, tx2;
  shuffled.bind(rx2, kServer);
  shuffled.bind(tx2, Address::ip("127.0.0.1", 0));
  std::vector<std::string> sent;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(std::to_string(i));
    tx2.transport().write(sent.back(), kServer);
  }
  shuffled.pump();
  auto got = rx2.payloads();
  CHECK(got != sent);
  CHECK(std::multiset<std::string>(got.begin(), got.end()) ==
        std::multiset<std::string>(sent.begin(), sent.end()));
}

TEST_CASE("multicast reaches the members of the group at that port") {
  DatagramNetwork net;
  DatagramRecording m1, m2, other, outsider, sender;
  const Address group = Address::ip("239.1.1.1", 6000);
  net.bind(m1, Address::ip("0.0.0.0", 6000), true);
  CHECK_THROWS_AS(net.bind(m2, Address::ip("0.0.0.0", 6000)), std::system_error);
  net.bind(m2, Address::ip("239.1.1.1", 6000), true);   // bound to the group itself
  net.bind(other, Address::ip("0.0.0.0", 6000), true);  // same port, not a member
  m1.transport().join_group("239.1.1.1");
  m2.transport().join_group("239.1.1.1");
  net.bind(outsider, Address::ip("0.0.0.0", 6001));
  outsider.transport().join_group("239.1.1.1");  // a member, but at another port
  net.bind(sender, Address::ip("127.0.0.1", 0));
  sender.transport().write("hello group", group);
  net.pump();
  CHECK(m1.received.size() == 1);
  CHECK(m2.received.size() == 1);
  CHECK(other.received.empty());
  CHECK(outsider.received.empty());
  // A member sending to its own group hears itself unless loopback is off.
  m1.transport().write("echo?", group);
  net.pump();
  CHECK(m1.received.size() == 2);
  m1.transport().set_multicast_loopback(false);
  m1.transport().write("quiet", group);
  net.pump();
  CHECK(m1.received.size() == 2);
  CHECK(m2.received.size() == 3);
  // Unicast to a shared port goes to one endpoint: the most recently bound wildcard.
  sender.transport().write("just one", Address::ip("127.0.0.1", 6000));
  net.pump();
  CHECK(other.payloads() == std::vector<std::string>{"just one"});
  CHECK(m1.received.size() == 2);
}

TEST_CASE("broadcast needs permission, then reaches every IPv4 endpoint at the port") {
  DatagramNetwork net;
  DatagramRecording a, b, sender;
  net.bind(a, Address::ip("0.0.0.0", 4000), true);
  net.bind(b, Address::ip("0.0.0.0", 4000), true);
  DatagramRecording specific;  // bound to one address: no broadcasts
  net.bind(specific, Address::ip("127.0.0.1", 4000), true);
  net.bind(sender, Address::ip("127.0.0.1", 0));
  sender.transport().write("all?", Address::ip("255.255.255.255", 4000));
  net.pump();
  REQUIRE(sender.errors.size() == 1);
  CHECK(sender.errors[0].cause().value() == EACCES);
  CHECK(a.received.empty());
  sender.transport().set_broadcast_allowed(true);
  sender.transport().write("all!", Address::ip("255.255.255.255", 4000));
  net.pump();
  CHECK(a.payloads() == std::vector<std::string>{"all!"});
  CHECK(b.payloads() == std::vector<std::string>{"all!"});
  CHECK(specific.received.empty());
}

TEST_CASE("a paused endpoint queues up to its buffer; later steps deliver after resume") {
  DatagramNetwork net;
  DatagramRecording rx, tx;
  MemoryDatagramTransport& r = net.bind(rx, kServer);
  net.bind(tx, Address::ip("127.0.0.1", 0));
  r.set_receive_buffer(8);
  r.pause_reading();
  for (const char* m : {"1234", "5678", "9"}) tx.transport().write(m, kServer);
  net.pump();
  CHECK(rx.received.empty());
  CHECK(r.held_count() == 2);
  CHECK(r.dropped() == 1);
  CHECK(net.delivered() == 2);
  r.resume_reading();
  CHECK(net.pump());
  CHECK(rx.payloads() == std::vector<std::string>{"1234", "5678"});
}

TEST_CASE("endpoints that talk forever make pump() fail clearly") {
  DatagramNetworkOptions o;
  o.max_steps = 50;
  DatagramNetwork net(o);
  DatagramRecording a, b;
  a.on_datagram = echo;
  b.on_datagram = echo;
  net.bind(a, kServer);
  net.bind(b, Address::ip("127.0.0.1", 0));
  b.transport().write("ping", kServer);
  CHECK_THROWS_WITH_AS(net.pump(), doctest::Contains("still busy after 50 steps"),
                       std::runtime_error);
}

TEST_CASE("bad probabilities are rejected") {
  DatagramNetworkOptions o;
  o.loss = 1.5;
  CHECK_THROWS_WITH_AS(DatagramNetwork{o}, doctest::Contains("loss"), std::invalid_argument);
  o.loss = 0;
  o.duplication = -0.1;
  CHECK_THROWS_AS(DatagramNetwork{o}, std::invalid_argument);
}

// A UDP client that retries: sends a query, resends it after `timeout` seconds without a
// reply, gives up after `tries`. Tested with the network (the first reply is lost) and
// the manual clock (the retry), without a socket or a sleep.
namespace {

class RetryingClient : public DatagramProtocol {
 public:
  RetryingClient(torsion::Scheduler& clock, Address server, double timeout, int tries)
      : clock_(clock), server_(std::move(server)), timeout_(timeout), tries_left_(tries) {}
  std::string answer;
  int sent = 0;
  bool gave_up = false;

  void started_listening() override { send(); }
  void datagram_received(std::string_view data, const Address& from) override {
    if (from != server_ || !answer.empty()) return;  // late duplicates are ignored
    answer = std::string(data);
    timer_.cancel();
  }
  void stopped_listening() override { timer_.cancel(); }

 private:
  void send() {
    ++sent;
    --tries_left_;
    transport().write("what time is it?", server_);
    timer_ = clock_.call_later(timeout_, [this] {
      if (tries_left_ > 0)
        send();
      else
        gave_up = true;
    });
  }
  torsion::Scheduler& clock_;
  Address server_;
  double timeout_;
  int tries_left_;
  DelayedCall timer_;
};

}  // namespace

TEST_CASE("a retrying UDP client survives a lost reply (network + manual clock)") {
  ManualClock clock;
  int replies = 0;
  DatagramNetworkOptions o;
  o.drop_if = [&](const Datagram& d) { return d.from == kServer && replies++ == 0; };
  DatagramNetwork net(o);
  DatagramRecording server;
  server.on_datagram = [](DatagramRecording& r, std::string_view, const Address& from) {
    r.transport().write("noon", from);
  };
  net.bind(server, kServer);
  RetryingClient client(clock, kServer, 2.0, 3);
  net.bind(client, Address::ip("127.0.0.1", 0));
  net.pump();
  CHECK(client.answer.empty());  // the first reply was lost
  CHECK(net.lost() == 1);
  clock.advance(1.9);
  CHECK(client.sent == 1);
  clock.advance(0.1);  // the retry
  CHECK(client.sent == 2);
  net.pump();
  CHECK(client.answer == "noon");
  clock.advance(10);
  CHECK(client.sent == 2);
  CHECK_FALSE(client.gave_up);
  CHECK(server.received.size() == 2);
}

TEST_CASE("a retrying UDP client gives up when nobody answers") {
  ManualClock clock;
  DatagramNetwork net;
  RetryingClient client(clock, kServer, 1.0, 3);
  net.bind(client, Address::ip("127.0.0.1", 0));
  for (int i = 0; i < 5; ++i) {
    net.pump();
    clock.advance(1);
  }
  CHECK(client.sent == 3);
  CHECK(client.gave_up);
  CHECK(net.lost() == 3);
}
