#include "framework/testing/memory_datagram_transport.hpp"

#include <doctest/doctest.h>

#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "tests/support/datagram_recording.hpp"

using torsion::Address;
using torsion::error;
using torsion::Reason;
using torsion::test::DatagramRecording;
using torsion::testing::Datagram;
using torsion::testing::MemoryDatagramTransport;

namespace {

const Address kPeer = Address::ip("127.0.0.1", 5353);

}  // namespace

TEST_CASE("MemoryDatagramTransport records what the protocol sends") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  CHECK(p.started == 1);
  CHECK(t.listening());
  CHECK(t.get_host() == Address::ip("127.0.0.1", 9000));
  CHECK(t.port() == 9000);
  p.transport().write("query", kPeer);
  p.transport().write("", kPeer);  // an empty datagram is a datagram
  REQUIRE(t.sent().size() == 2);
  CHECK(t.sent()[0] == Datagram{"query", t.get_host(), kPeer});
  CHECK(t.sent()[1].data.empty());
  CHECK(t.buffer_size() == 0);
  CHECK(t.take().size() == 2);
  CHECK(t.sent().empty());
  t.stop_listening();
  CHECK_FALSE(t.listening());
  p.transport().write("dropped", kPeer);
  CHECK(t.sent().empty());
  CHECK(p.stopped == 0);  // the test decides when stopped_listening comes
  t.close();
  t.close();
  CHECK(p.stopped == 1);
  CHECK(t.closed());
  CHECK_FALSE(p.has_transport());
}

TEST_CASE("receive delivers datagrams whole, with the sender's address") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  t.receive("one", kPeer);
  t.receive("two", Address::ip("10.0.0.1", 1));
  REQUIRE(p.received.size() == 2);
  CHECK(p.received[0].data == "one");
  CHECK(p.received[0].from == kPeer);
  CHECK(p.received[1].from == Address::ip("10.0.0.1", 1));
}

TEST_CASE("a connected endpoint writes to its peer and only hears from it") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  CHECK_THROWS_WITH_AS(p.transport().write("x"), doctest::Contains("not connected"),
                       std::logic_error);
  t.connect(kPeer);
  CHECK(t.get_peer() == kPeer);
  p.transport().write("hello");
  p.transport().write("again", kPeer);
  CHECK(t.sent().size() == 2);
  CHECK(t.sent()[0].to == kPeer);
  CHECK_THROWS_WITH_AS(p.transport().write("x", Address::ip("127.0.0.1", 1)),
                       doctest::Contains("connected to 127.0.0.1:5353"), std::logic_error);
  t.receive("stranger", Address::ip("127.0.0.1", 1));
  t.receive("peer", kPeer);
  CHECK(p.payloads() == std::vector<std::string>{"peer"});
  CHECK(t.dropped() == 1);
  t.refuse();
  CHECK(p.refused == 1);
}

TEST_CASE("writes are checked as a UDP endpoint checks them") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  CHECK(t.max_datagram_size() == 65507);
  CHECK_NOTHROW(p.transport().write(std::string(65507, 'x'), kPeer));
  CHECK_THROWS_WITH_AS(p.transport().write(std::string(65508, 'x'), kPeer),
                       "write: a datagram of 65508 bytes exceeds the maximum of 65507",
                       std::length_error);
  t.set_max_datagram_size(1200);
  CHECK_THROWS_AS(p.transport().write(std::string(1201, 'x'), kPeer), std::length_error);
  CHECK_THROWS_WITH_AS(p.transport().write("x", Address::ip("example.com", 53)),
                       doctest::Contains("example.com:53 is not a numeric"), std::invalid_argument);
  CHECK_THROWS_AS(p.transport().write("x", Address::ip("::1", 53)), std::invalid_argument);
  CHECK_THROWS_AS(p.transport().write("x", Address()), std::invalid_argument);
  CHECK_THROWS_AS(t.connect(Address::ip("localhost", 53)), std::invalid_argument);
  CHECK(t.sent().size() == 1);

  MemoryDatagramTransport six(Address::ip("::1", 9000));
  CHECK(six.max_datagram_size() == 65527);
  CHECK_THROWS_AS(MemoryDatagramTransport(Address::unix_socket("/tmp/x")), std::invalid_argument);
}

TEST_CASE("paused reading holds datagrams back, then drops beyond the buffer") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  t.set_receive_buffer(10);
  t.pause_reading();
  CHECK(t.reading_paused());
  t.receive("12345", kPeer);
  t.receive("67890", kPeer);
  t.receive("x", kPeer);  // over 10 bytes: dropped
  CHECK(p.received.empty());
  CHECK(t.held_count() == 2);
  CHECK(t.dropped() == 1);
  CHECK(t.deliver_held() == 0);  // still paused
  t.resume_reading();
  CHECK(p.received.empty());  // resume never calls back from inside itself
  CHECK(t.deliver_held() == 2);
  CHECK(p.payloads() == std::vector<std::string>{"12345", "67890"});
  t.receive("later", kPeer);
  CHECK(p.received.size() == 3);
}

TEST_CASE("receive after resume delivers the held datagrams first") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  t.pause_reading();
  t.receive("a", kPeer);
  t.resume_reading();
  t.receive("b", kPeer);
  CHECK(p.payloads() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("errors, refusals and misuse") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  CHECK_THROWS_AS(t.receive("x", kPeer), std::logic_error);
  CHECK_THROWS_AS(t.fail(Reason(error::connection_lost)), std::logic_error);
  t.attach(p);
  CHECK_THROWS_AS(t.attach(p), std::logic_error);
  CHECK_THROWS_WITH_AS(t.refuse(), doctest::Contains("connected endpoints only"), std::logic_error);
  t.fail(Reason::from_os_error(std::make_error_code(std::errc::network_unreachable)));
  REQUIRE(p.errors.size() == 1);
  CHECK(p.errors[0].cause() == std::errc::network_unreachable);
  t.close();
  t.receive("after close", kPeer);
  CHECK(p.received.empty());
}

TEST_CASE("multicast and broadcast settings are recorded") {
  MemoryDatagramTransport t;
  DatagramRecording p;
  t.attach(p);
  p.transport().join_group("239.1.2.3");
  CHECK(t.groups().count("239.1.2.3") == 1);
  CHECK_THROWS_AS(p.transport().join_group("10.0.0.1"), std::system_error);  // not multicast
  CHECK_THROWS_AS(p.transport().leave_group("239.9.9.9"), std::system_error);
  p.transport().leave_group("239.1.2.3");
  CHECK(t.groups().empty());
  p.transport().set_multicast_ttl(4);
  CHECK(t.multicast_ttl() == 4);
  CHECK_THROWS_AS(p.transport().set_multicast_ttl(256), std::invalid_argument);
  p.transport().set_multicast_loopback(false);
  CHECK_FALSE(t.multicast_loopback());
  CHECK_FALSE(t.broadcast_allowed());
  p.transport().set_broadcast_allowed(true);
  CHECK(t.broadcast_allowed());
  CHECK(t.native_handle() == -1);
}
