// Runs the documentation's snippets (docs/snippets/*.cpp) and checks what they do, so
// that a page's code is not only compiled but also right.
#include "docs/snippets/snippets.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "framework/log.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/support/fake_journal.hpp"
#include "tests/support/temp_files.hpp"
#include "transports/endpoints.hpp"

TEST_CASE("transports: process helpers and maybe_deferred") {
  torsion::Reactor reactor;
  CHECK(docs::process_helpers(reactor) == "hello\n3\n-1");
}

TEST_CASE("reactor-and-timers: call_later, cancel, reset, delay") {
  torsion::Reactor reactor;
  CHECK(docs::timers_in_order(reactor) == std::vector<std::string>{"soon", "later"});
}

TEST_CASE("reactor-and-timers: priorities") {
  torsion::Reactor reactor;
  CHECK(docs::priorities_in_order(reactor) == std::vector<std::string>{"high", "normal", "idle"});
}

TEST_CASE("reactor-and-timers: call_from_thread") {
  torsion::Reactor reactor;
  CHECK(docs::sum_on_a_worker_thread(reactor) == 500500);
}

TEST_CASE("reactor-and-timers: a reactor pool serves one port from two threads") {
  // 40 connections hashed by source port: the chance that one reactor gets none is 2^-39.
  const std::vector<int> counts = docs::connections_per_reactor(40);
  REQUIRE(counts.size() == 2);
  CHECK(counts[0] + counts[1] == 40);
  CHECK(counts[0] > 0);
  CHECK(counts[1] > 0);
}

TEST_CASE("reactor-and-timers: a looping call that waits for a coroutine") {
  torsion::Reactor reactor;
  CHECK(docs::slow_checks_in_a_loop(reactor) == 3);
}

TEST_CASE("protocols-and-factories: the PROXY header reaches the protocol") {
  CHECK(docs::what_the_proxy_said() == "192.0.2.1:56324 asked for example.com over TLSv1.3");
}

TEST_CASE("protocols-and-factories: a peer sending one byte a second is cut off") {
  CHECK(docs::slow_peer_cut_off_after() == doctest::Approx(10));
}

TEST_CASE("protocols-and-factories: make_factory copies; std::ref shares") {
  const docs::SharedState s = docs::shared_state();
  CHECK(s.said == std::vector<std::string>{"hi", "bye"});
  CHECK(s.copy_sees == 0);  // the factory's copy was taken before anything was said
}

TEST_CASE("protocols-and-factories: echo and a client") {
  torsion::Reactor reactor;
  CHECK(docs::hello_through_echo(reactor) == "hello");
}

TEST_CASE("protocols-and-factories: a factory that refuses") {
  torsion::Reactor reactor;
  CHECK(docs::connections_refused_over_limit(reactor) == 1);
  CHECK(reactor.connection_count() == 0);
}

TEST_CASE("transports: three ways to write") {
  torsion::testing::StringTransport t;
  torsion::Protocol protocol;
  t.connect(protocol);
  docs::three_ways_to_write(t, "BIG");
  CHECK(t.value() ==
        "copied, or sent at onceBIGHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("transports: half-close request and answer") {
  torsion::Reactor reactor;
  CHECK(docs::request_with_half_close(reactor) == "HELLO, TORSION");
}

TEST_CASE("flow-control: a pull producer") {
  torsion::Reactor reactor;
  CHECK(docs::bytes_from_pull_producer(reactor, 1024 * 1024 + 7) == 1024 * 1024 + 7);
}

TEST_CASE("flow-control: proxy back-pressure") { CHECK(docs::proxy_pauses_reading()); }

TEST_CASE("flow-control: a broadcast drops the member that does not read") {
  const docs::BroadcastRun r = docs::broadcast_to_a_reader_and_a_sleeper();
  CHECK(r.reader_got == 1000 * 1000);
  CHECK(r.sleeper_aborted);
  CHECK(r.most_queued <= 64 * 1024 + 1000);  // the high mark plus one message
}

TEST_CASE("endpoints: from strings") {
  torsion::Reactor reactor;
  CHECK(docs::echo_through_endpoints(reactor) == "ping");
  CHECK(docs::endpoint_error_message(reactor) ==
        "endpoint 'tcp:8080:backlog=lots': parameter 'backlog' must be an integer in "
        "1..65535, got 'lots'");
}

TEST_CASE("endpoints: registering a type") {
  docs::register_loopback_endpoint();
  torsion::Reactor reactor;
  auto echo = torsion::make_factory<torsion::Protocol>();
  auto port = torsion::server_from_string(reactor, "loopback:0")->listen(echo);
  CHECK(port->get_host().host() == "127.0.0.1");
  CHECK_THROWS_AS(torsion::server_from_string(reactor, "loopback:0:interface=::"),
                  torsion::EndpointError);
}

TEST_CASE("logging: routing and context") {
  const auto lines = docs::logged_lines();
  CHECK(lines == std::vector<std::string>{
                     "info: starting",
                     "warning: conn " + lines.at(1).substr(14, lines.at(1).find(' ', 14) - 14) +
                         " 127.0.0.1:8080 <- 127.0.0.1:40312: client too slow, dropping it",
                     "id=0 msg=structured"});
  CHECK(torsion::log_level() == torsion::LogLevel::info);
}

TEST_CASE("deploying: the log to a file, and to the journal") {
  torsion::test::TempDir dir("docs-log");
  docs::log_to_file(dir / "server.log");
  const std::string text = torsion::test::read_file(dir / "server.log");
  CHECK(text.find("Z [info] to the file\n") != std::string::npos);
  torsion::test::FakeJournal journal;
  docs::log_to_journal(journal.path);
  CHECK(journal.receive() == "MESSAGE=to the journal\nPRIORITY=4\nSYSLOG_IDENTIFIER=echo_server\n");
}

TEST_CASE("why-a-reactor: a transport write with work at idle priority") {
  torsion::Reactor reactor;
  long slices = 0;
  CHECK(docs::bulk_write_with_idle_work(reactor, 8 * 1024 * 1024, slices) == 8 * 1024 * 1024);
  CHECK(slices > 0);
}

TEST_CASE("async-styles: several add_callback on one Deferred chain in place") {
  CHECK(docs::chained_in_place() == "42");
}

TEST_CASE("async-styles: a Deferred chain and a coroutine") {
  torsion::Reactor reactor;
  const std::string got = docs::deferred_and_coroutine(reactor);
  CHECK(got.rfind("failed: connection refused", 0) == 0);
  CHECK(got.substr(got.size() - 7) == "/ hello");  // read_line drops the "\n"
}

TEST_CASE("async-styles: read_to_end takes every byte until the server closes") {
  torsion::Reactor reactor;
  CHECK(docs::read_to_end_reply(reactor) == "hello\n");
}

TEST_CASE("protocols: a LineReceiver answers each \\r\\n line; a bare \\n never ends one") {
  const docs::ProtocolRun crlf = docs::shout("hello\r\nwor");
  CHECK(crlf.written == "HELLO\r\n");
  const docs::ProtocolRun bare = docs::shout("hello\nworld\n");  // what nc sends
  CHECK(bare.written.empty());
  CHECK_FALSE(bare.closing);
}

TEST_CASE("protocols: a \\n delimiter takes nc's lines and telnet's") {
  CHECK(docs::commands("a\nb\r\n").written == "ok a\nok b\n");
  const docs::ProtocolRun long_line = docs::commands(std::string(1025, 'x') + "\n");
  CHECK(long_line.written.empty());
  CHECK(long_line.closing);  // the default line_length_exceeded: lose_connection
  CHECK(long_line.rejection == torsion::error::line_too_long);
  CHECK(docs::commands(std::string(1024, 'x') + "\n").written.size() == 3 + 1024 + 1);
}

TEST_CASE("protocols: line_length_exceeded may keep the connection") {
  // As in Twisted, the rest of the read goes with the over-long line; a later read is
  // served again.
  const std::string input = "short\r\n" + std::string(40, 'x') + "\r\nlost\r\n";
  const docs::ProtocolRun r = docs::tolerant(input, 0);
  CHECK(r.written == "short\r\nERR line too long\r\n");
  CHECK_FALSE(r.closing);
  const docs::ProtocolRun split = docs::tolerant(input + "next\r\n", input.size());
  CHECK(split.written == "short\r\nERR line too long\r\nnext\r\n");
}

TEST_CASE("protocols: expect_raw reads a memcached-style value however it is cut") {
  const std::string input =
      "set k 5\r\nab\r\nc\r\nget k\r\nget none\r\nset z 2\r\nxyz\r\nset k x\r\nset k\r\n";
  const std::string want =
      "STORED\r\nVALUE k 5\r\nab\r\nc\r\nEND\r\nEND\r\nCLIENT_ERROR bad data chunk\r\n"
      "ERROR\r\nCLIENT_ERROR bad command line format\r\n";  // "\nset k x" is no command
  for (std::size_t chunk = 0; chunk <= input.size(); ++chunk) {
    INFO("chunk " << chunk);
    CHECK(docs::store(input, chunk).written == want);
  }
}

TEST_CASE("protocols: Int32StringReceiver frames, and its length limit") {
  const std::string hello("\0\0\0\5hello", 9);
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{3}})
    CHECK(docs::reverse(hello + hello, chunk).written == std::string("\0\0\0\5olleh", 9) +
                                                              std::string("\0\0\0\5olleh", 9));
  const docs::ProtocolRun too_long = docs::reverse(std::string("\0\1\0\1", 4), 0);  // 65537
  CHECK(too_long.closing);
  CHECK(too_long.rejection == torsion::error::length_limit_exceeded);
}

TEST_CASE("protocols: netstrings, and a malformed one") {
  std::vector<std::string> got;
  const docs::ProtocolRun good = docs::netstrings("5:hello,0:,", got);
  CHECK(got == std::vector<std::string>{"hello", ""});
  CHECK(good.written == "2:hi,");
  CHECK_FALSE(good.closing);
  got.clear();
  const docs::ProtocolRun bad = docs::netstrings("05:hello,", got);  // a leading zero
  CHECK(got.empty());
  CHECK(bad.closing);
  CHECK(bad.rejection == torsion::error::malformed_input);
}

TEST_CASE("protocols: a TimeoutMixin reset on input only ignores writes") {
  // Input at 20 s; written to every second after that; aborted 30 s after the input.
  CHECK(docs::session_dropped_after() == doctest::Approx(50));
}

TEST_CASE("protocols: policies stacked around one factory") {
  const docs::PolicyRun r = docs::stacked_policies();
  CHECK(r.accepted == 4);  // 4 per host
  CHECK(r.refused == 1);
  CHECK(r.reply == "ok hello\n");
  CHECK(r.dripping_aborted);  // no whole line within 10 s
  CHECK(r.others_open);
  CHECK(r.read == 11);
}

TEST_CASE("protocols: a WrappingFactory of your own") {
  std::size_t bytes_in = 0, refused = 0;
  CHECK(docs::metered(bytes_in, refused) == "ABC\r\n");
  CHECK(bytes_in == 5);
  CHECK(refused == 1);
}

TEST_CASE("protocols-and-factories: callbacks and coroutines that outlive their protocol") {
  CHECK(docs::answers_in_time() == "bob: idle\r\nbob: idle\r\n");
  CHECK(docs::late_answers() == "finger[] slow[]");  // nothing ran on a destroyed protocol
}

TEST_CASE("protocols-and-factories: connect_protocol") {
  torsion::Reactor reactor;
  CHECK(docs::hello_with_connect_protocol(reactor) == "hello");
}

TEST_CASE("protocols-and-factories: a proxy with RelayFactory and a ListenService") {
  torsion::Reactor reactor;
  CHECK(docs::through_a_proxy(reactor) == "through");
}

TEST_CASE("protocols-and-factories: a MultiService with a ClientService") {
  torsion::Reactor reactor;
  CHECK(docs::an_application(reactor) == std::vector<std::string>{"connected", "stopped", "0"});
}
