#include "protocols/wrapping.hpp"

#include <doctest/doctest.h>

#include "framework/testing/string_transport.hpp"
#include "protocols/limits.hpp"
#include "protocols/timeout.hpp"
#include "protocols/wire.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"
#include "transports/tcp.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::RecordingFactory;
using torsion::test::wait_for;
using torsion::testing::StringTransport;

TEST_CASE("a wrapper forwards events one way and calls the other way") {
  RecordingFactory inner;
  inner.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) {
      rr.transport->write(d);
      if (d == "bye") rr.transport->lose_connection();
    };
    r.keep_open_on_eof = true;
  };
  WrappingFactory factory(inner);
  auto p = factory.build_protocol(Address::ip("10.0.0.1", 1234));
  REQUIRE(p);
  CHECK(factory.connection_count() == 1);
  StringTransport t;
  t.set_peer(Address::ip("10.0.0.1", 1234));
  t.connect(*p);
  REQUIRE(inner.records.size() == 1);
  Record& r = inner.records[0];
  CHECK(r.made == 1);
  CHECK(r.transport != &t);  // the protocol talks to the wrapper
  CHECK(r.transport->get_peer() == Address::ip("10.0.0.1", 1234));
  CHECK(r.transport->get_host() == t.get_host());
  p->data_received("hi");
  CHECK(t.value() == "hi");
  CHECK(p->eof_received());
  r.transport->pause_producing();
  CHECK(t.reading_paused());
  r.transport->resume_producing();
  CHECK_FALSE(t.reading_paused());
  r.transport->set_write_buffer_limits(10, 5);
  CHECK(t.write_buffer_limits().high == 10);
  p->data_received("bye");
  CHECK(t.disconnecting());
  CHECK_FALSE(r.transport->connected());
  t.disconnect();
  CHECK(r.lost == 1);
  CHECK(factory.connection_count() == 1);  // until the transport destroys the protocol
  p.reset();
  CHECK(factory.connection_count() == 0);
}

TEST_CASE("a wrapped factory that refuses refuses through the wrapper") {
  FunctionFactory<> refuser([](const Address&) { return std::unique_ptr<Protocol>(); });
  WrappingFactory factory(refuser);
  CHECK_FALSE(factory.build_protocol(Address::ip("10.0.0.1", 1)));
  CHECK(factory.connection_count() == 0);
}

TEST_CASE("ConnectionLimitFactory refuses above the limit and accepts again after a close") {
  RecordingFactory inner;
  ConnectionLimitFactory factory(inner, 2);
  auto a = factory.build_protocol(Address::ip("10.0.0.1", 1));
  auto b = factory.build_protocol(Address::ip("10.0.0.2", 1));
  CHECK(a);
  CHECK(b);
  CHECK_FALSE(factory.build_protocol(Address::ip("10.0.0.3", 1)));
  CHECK(factory.refused_count() == 1);
  CHECK(inner.records.size() == 2);  // the wrapped factory was not asked
  a.reset();
  CHECK(factory.build_protocol(Address::ip("10.0.0.3", 1)));  // built and dropped at once
  auto c = factory.build_protocol(Address::ip("10.0.0.3", 1));
  CHECK(c);
  CHECK(factory.connection_count() == 2);
}

TEST_CASE("PeerConnectionLimitFactory counts per host, not per port") {
  RecordingFactory inner;
  PeerConnectionLimitFactory factory(inner, 2);
  auto a1 = factory.build_protocol(Address::ip("10.0.0.1", 1));
  auto a2 = factory.build_protocol(Address::ip("10.0.0.1", 2));
  CHECK(a1);
  CHECK(a2);
  CHECK_FALSE(factory.build_protocol(Address::ip("10.0.0.1", 3)));
  auto b = factory.build_protocol(Address::ip("::1", 3));
  CHECK(b);
  CHECK(factory.connections_from("10.0.0.1") == 2);
  CHECK(factory.connections_from("::1") == 1);
  CHECK(factory.peer_count() == 2);
  a1.reset();
  a2.reset();
  CHECK(factory.connections_from("10.0.0.1") == 0);
  CHECK(factory.peer_count() == 1);  // no entry left behind for a host that went away
  CHECK(factory.build_protocol(Address::ip("10.0.0.1", 4)));
}

TEST_CASE("a connection limit over real TCP: the extra client is closed at once") {
  Reactor reactor;
  auto echo = make_factory<Echo>();
  ConnectionLimitFactory limited(echo, 1);
  auto port = listen_tcp(reactor, 0, limited, loopback());

  RecordingClientFactory first;
  first.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("one"); }; };
  auto c1 = connect_tcp(reactor, "127.0.0.1", port->port(), first);
  wait_for(
      reactor, [&] { return !first.records.empty() && first.records[0].received == "one"; },
      "the first client's echo");
  CHECK(limited.connection_count() == 1);

  RecordingClientFactory second;
  auto c2 = connect_tcp(reactor, "127.0.0.1", port->port(), second);
  wait_for(
      reactor, [&] { return second.lost == 1 || second.failed == 1; },
      "the second client to be turned away");
  CHECK(limited.refused_count() == 1);
  CHECK((second.records.empty() || second.records[0].received.empty()));

  first.records[0].transport->lose_connection();
  wait_for(
      reactor, [&] { return first.lost == 1 && limited.connection_count() == 0; },
      "the first connection to go away");
  RecordingClientFactory third;
  third.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("three"); }; };
  auto c3 = connect_tcp(reactor, "127.0.0.1", port->port(), third);
  wait_for(
      reactor, [&] { return !third.records.empty() && third.records[0].received == "three"; },
      "a new client to be served");
  third.records[0].transport->lose_connection();
  wait_for(
      reactor, [&] { return third.lost == 1 && reactor.connection_count() == 0; },
      "everything to close");
  port->stop_listening();
}

TEST_CASE("a wrapping factory destroyed before its wrappers detaches them") {
  RecordingFactory inner;
  auto factory = std::make_unique<WrappingFactory>(inner);
  auto p = factory->build_protocol(Address::ip("10.0.0.1", 1234));
  REQUIRE(p);
  auto* wrapper = dynamic_cast<ProtocolWrapper*>(p.get());
  REQUIRE(wrapper != nullptr);
  CHECK(&wrapper->factory() == factory.get());
  StringTransport t;
  t.connect(*p);
  factory.reset();
  CHECK_THROWS_AS(wrapper->factory(), std::logic_error);
  p->data_received("still forwarded");  // the connection itself goes on
  REQUIRE(inner.records.size() == 1);
  CHECK(inner.records[0].received == "still forwarded");
  t.disconnect();
  CHECK(inner.records[0].lost == 1);
  p.reset();  // was a use after free: the wrapper unregistered from the dead factory
}

TEST_CASE("factories declared after the reactor: destroyed first, they close their connections") {
  // A user's natural order: the reactor first, then the factories, so the factories go
  // first. A factory destroyed while a connection it built is open closes that connection
  // at once and destroys its protocol without connection_lost (framework/protocol.hpp):
  // nothing can call into the dead factory, and ~Reactor later finds only the connections
  // of factories still alive. Before factories tracked their connections, ASan reported a
  // use after free in the wrapper's destructor here.
  RecordingClientFactory wrapped_client, plain_client;  // declared first: they outlive all
  Reactor reactor;
  RecordingFactory inner;
  inner.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view d) { rr.transport->write(d); };
  };
  auto idle = std::make_unique<TimeoutFactory>(inner, reactor, 30);
  auto echo = make_factory<Echo>();  // declared after the reactor too; alive at the end
  auto port = listen_tcp(reactor, 0, *idle, loopback());
  auto echo_port = listen_tcp(reactor, 0, echo, loopback());
  auto say_one = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("one"); }; };
  wrapped_client.setup = say_one;
  plain_client.setup = say_one;
  auto c1 = connect_tcp(reactor, "127.0.0.1", port->port(), wrapped_client);
  auto c2 = connect_tcp(reactor, "127.0.0.1", echo_port->port(), plain_client);
  wait_for(
      reactor,
      [&] {
        return !wrapped_client.records.empty() && wrapped_client.records[0].received == "one" &&
               !plain_client.records.empty() && plain_client.records[0].received == "one";
      },
      "the echoes through the time-out wrapper and the plain echo");
  REQUIRE(inner.records.size() == 1);
  CHECK(idle->connection_count() == 1);
  REQUIRE(reactor.connection_count() == 4);
  Record& wrapped = wrapped_client.records[0];
  Record& plain = plain_client.records[0];

  idle.reset();
  // The server end is gone at once, its protocols destroyed without connection_lost.
  CHECK(reactor.connection_count() == 3);
  CHECK(inner.records[0].made == 1);
  CHECK(inner.records[0].lost == 0);
  CHECK_FALSE(port->listening());
  wrapped.transport->write("two");  // to a closed peer: no echo, a defined close
  wait_for(
      reactor, [&] { return wrapped.lost == 1; },
      "the client of the destroyed factory to see the close");
  CHECK(wrapped.received == "one");
  CHECK(plain.lost == 0);
  plain.transport->write("two");
  wait_for(
      reactor, [&] { return plain.received == "onetwo"; }, "the other factory's echo to go on");
  CHECK(reactor.connection_count() == 2);
  // Both ends of `plain` are open when the scope ends: ~echo closes the server end, then
  // ~Reactor the client's (its factory was declared first, so it is still alive).
}
