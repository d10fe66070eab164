// Runs the protocols examples in-process: their factories on 127.0.0.1 port 0 with a real
// Reactor, and a client conversation with each.
#define TORSION_EXAMPLE_NO_MAIN
#include <doctest/doctest.h>

#include "examples/chat_server.cpp"
#include "examples/wire_server.cpp"
#include "tests/support/loopback.hpp"
#include "tests/support/recording.hpp"
#include "tests/support/wait.hpp"

using namespace torsion;
using torsion::test::loopback;
using torsion::test::Record;
using torsion::test::RecordingClientFactory;
using torsion::test::wait_for;

TEST_CASE("chat_server: nicknames, then every line goes to every other client") {
  Reactor reactor;
  chat_example::ChatFactory chat;
  auto port = listen_tcp(reactor, 0, chat, loopback());

  RecordingClientFactory alice, bob;
  auto ca = connect_tcp(reactor, "127.0.0.1", port->port(), alice);
  auto cb = connect_tcp(reactor, "127.0.0.1", port->port(), bob);
  wait_for(
      reactor,
      [&] {
        return !alice.records.empty() && !bob.records.empty() &&
               alice.records[0].received == "What's your name?\r\n" &&
               bob.records[0].received == "What's your name?\r\n";
      },
      "both greetings");
  Record& a = alice.records[0];
  Record& b = bob.records[0];
  a.received.clear();
  b.received.clear();
  a.transport->write("alice\r\n");
  wait_for(
      reactor, [&] { return a.received == "Welcome, alice!\r\n"; }, "alice's welcome");
  b.transport->write("alice\r\n");
  wait_for(
      reactor, [&] { return b.received == "Name taken, please choose another.\r\n"; },
      "the name to be refused");
  b.received.clear();
  b.transport->write("bob\r\nhello there\r\n");
  wait_for(
      reactor, [&] { return a.received == "Welcome, alice!\r\n<bob> hello there\r\n"; },
      "bob's line at alice");
  a.transport->write("hi bob\r\n");
  wait_for(
      reactor, [&] { return b.received == "Welcome, bob!\r\n<alice> hi bob\r\n"; },
      "alice's line at bob");
  CHECK(chat.users.size() == 2);
  a.transport->lose_connection();
  wait_for(
      reactor, [&] { return chat.users.size() == 1; }, "alice to leave the room");
  b.transport->lose_connection();
  wait_for(
      reactor, [&] { return reactor.connection_count() == 0; }, "everyone to leave");
  CHECK(chat.users.empty());
  port->stop_listening();
}

TEST_CASE("wire_server: echo, discard, chargen, daytime and qotd answer") {
  Reactor reactor;
  wire_example::WireServices services;
  services.listen(reactor, 0, "127.0.0.1");
  REQUIRE(services.ports.size() == 5);
  auto port_of = [&](std::string_view name) {
    for (const auto& l : services.ports)
      if (l.name == name) return static_cast<int>(l.port->port());
    FAIL("no such service");
    return 0;
  };

  RecordingClientFactory echo;
  echo.setup = [](Record& r) { r.on_made = [](Record& rr) { rr.transport->write("ping"); }; };
  auto c1 = connect_tcp(reactor, "127.0.0.1", port_of("echo"), echo);
  wait_for(
      reactor, [&] { return !echo.records.empty() && echo.records[0].received == "ping"; },
      "the echo");
  echo.records[0].transport->lose_connection();

  RecordingClientFactory chargen;
  chargen.setup = [](Record& r) {
    r.on_data = [](Record& rr, std::string_view) {
      if (rr.received.size() >= 10000) rr.transport->lose_connection();
    };
  };
  auto c2 = connect_tcp(reactor, "127.0.0.1", port_of("chargen"), chargen);
  wait_for(
      reactor, [&] { return chargen.lost == 1; }, "10 kB of chargen");
  CHECK(chargen.records[0].received.substr(0, 2 * Chargen::kLineSize) ==
        Chargen::line(0) + Chargen::line(1));

  RecordingClientFactory daytime, qotd;
  auto c3 = connect_tcp(reactor, "127.0.0.1", port_of("daytime"), daytime);
  auto c4 = connect_tcp(reactor, "127.0.0.1", port_of("qotd"), qotd);
  wait_for(
      reactor, [&] { return daytime.lost == 1 && qotd.lost == 1; },
      "daytime and qotd to answer and close");
  const std::string& when = daytime.records[0].received;
  CHECK(when.size() == 26);
  CHECK(when.ends_with("\r\n"));
  CHECK(daytime.lost_reason->clean());
  CHECK(qotd.records[0].received == "The best way to predict the future is to invent it.\r\n");

  RecordingClientFactory discard;
  discard.setup = [](Record& r) {
    r.on_made = [](Record& rr) {
      rr.transport->write("into the void");
      rr.transport->lose_connection();
    };
  };
  auto c5 = connect_tcp(reactor, "127.0.0.1", port_of("discard"), discard);
  wait_for(
      reactor, [&] { return discard.lost == 1; }, "the discard client to finish");
  CHECK(discard.records[0].received.empty());
  wait_for(
      reactor, [&] { return reactor.connection_count() == 0; }, "every connection to close");
  for (auto& l : services.ports) l.port->stop_listening();
}
