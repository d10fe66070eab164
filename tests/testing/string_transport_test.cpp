#include "framework/testing/string_transport.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>
#include <string>

using torsion::Address;
using torsion::error;
using torsion::Producer;
using torsion::Protocol;
using torsion::Reason;
using torsion::testing::StringTransport;

namespace {

struct Echo : Protocol {
  int made = 0, lost = 0, eofs = 0;
  bool keep_open_on_eof = false;
  bool pause_on_data = false;
  std::string received;
  std::optional<Reason> reason;
  void connection_made() override { ++made; }
  void data_received(std::string_view d) override {
    received.append(d);
    transport().write(d);
    if (pause_on_data) transport().pause_producing();
  }
  bool eof_received() override {
    ++eofs;
    return keep_open_on_eof;
  }
  void connection_lost(const Reason& r) override {
    ++lost;
    reason = r;
  }
};

struct CountingProducer : Producer {
  int pauses = 0, resumes = 0, stops = 0;
  void pause_producing() override { ++pauses; }
  void resume_producing() override { ++resumes; }
  void stop_producing() override { ++stops; }
};

}  // namespace

TEST_CASE("StringTransport records writes and close requests") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  CHECK(echo.made == 1);
  CHECK(t.connected());
  echo.data_received("abc");
  CHECK(t.value() == "abc");
  CHECK(t.take() == "abc");
  CHECK(t.value().empty());
  echo.transport().write(std::string("moved"));
  const std::string_view parts[] = {"a", "b", "c"};
  echo.transport().write_sequence(parts);
  CHECK(t.value() == "movedabc");
  t.clear();
  echo.transport().lose_connection();
  CHECK(t.disconnecting());
  CHECK_FALSE(t.connected());
  CHECK_FALSE(t.aborted());
  echo.transport().write("dropped");
  CHECK(t.value().empty());
  CHECK(echo.lost == 0);  // nothing happens by itself: the test decides when it is lost
  t.disconnect();
  t.disconnect();
  CHECK(echo.lost == 1);
  CHECK(echo.reason->clean());
  CHECK(t.lost());
  CHECK_FALSE(echo.has_transport());
}

TEST_CASE("StringTransport records abort and lose_write_connection") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.set_buffering(true);
  t.write("queued");
  t.abort_connection();
  CHECK(t.aborted());
  CHECK(t.buffer_size() == 0);  // an abort drops the queue
  CHECK_FALSE(t.connected());

  StringTransport h;
  Echo half;
  h.connect(half);
  h.write("before");
  h.lose_write_connection();
  CHECK(h.write_closed());
  CHECK(h.connected());  // reading goes on
  h.write("after");
  CHECK(h.value() == "before");
  h.receive("in");
  CHECK(half.received == "in");
}

TEST_CASE("StringTransport delivers any reason") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.disconnect(Reason(error::connection_lost, std::make_error_code(std::errc::connection_reset)));
  CHECK(echo.reason->is(error::connection_lost));
  CHECK(echo.reason->cause() == std::errc::connection_reset);
}

TEST_CASE("StringTransport addresses are configurable") {
  StringTransport t;
  CHECK(t.get_peer() == Address::ip("127.0.0.1", 54321));
  CHECK(t.get_host() == Address::ip("127.0.0.1", 8000));
  t.set_peer(Address::ip("::1", 1));
  t.set_host(Address::unix_socket("/run/x.sock"));
  CHECK(t.get_peer().to_string() == "[::1]:1");
  CHECK(t.get_host().to_string() == "unix:/run/x.sock");
  CHECK(t.native_handle() == -1);
}

TEST_CASE("StringTransport misuse is a clear error") {
  StringTransport t;
  CHECK_THROWS_AS(t.receive("x"), std::logic_error);
  CHECK_THROWS_AS(t.receive_eof(), std::logic_error);
  Echo a, b;
  t.connect(a);
  CHECK_THROWS_AS(t.connect(b), std::logic_error);
  CHECK_THROWS_WITH_AS(t.set_write_buffer_limits(1, 2), doctest::Contains("low (2)"),
                       std::invalid_argument);
  CountingProducer p1, p2;
  t.register_producer(p1, true);
  CHECK_THROWS_AS(t.register_producer(p2, true), std::logic_error);
}

TEST_CASE("receive_held_back_while_reading_is_paused") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  echo.transport().pause_producing();
  CHECK(t.reading_paused());
  t.receive("one,");
  t.receive("two,");
  t.receive_eof();
  CHECK(echo.received.empty());
  CHECK(t.held_back() == 8);
  CHECK(echo.eofs == 0);
  echo.transport().resume_producing();
  CHECK(echo.received.empty());  // resume never calls back from inside itself
  t.receive("");
  CHECK(echo.received == "one,two,");
  CHECK(echo.eofs == 1);
  CHECK(t.disconnecting());  // eof_received returned false: the transport closes
  t.receive("ignored after EOF");
  CHECK(echo.received == "one,two,");
}

TEST_CASE("pause_in_data_received_holds_back_the_rest") {
  StringTransport t;
  Echo echo;
  echo.pause_on_data = true;
  t.connect(echo);
  t.receive("a");
  t.receive("b");
  t.receive_eof();
  CHECK(echo.received == "a");
  CHECK(echo.eofs == 0);
  echo.pause_on_data = false;
  echo.transport().resume_producing();
  t.receive("c");
  CHECK(echo.received == "abc");
  CHECK(echo.eofs == 1);
}

TEST_CASE("receive_eof: keep open for a half close, or close") {
  StringTransport t;
  Echo echo;
  echo.keep_open_on_eof = true;
  t.connect(echo);
  t.receive_eof();
  CHECK(echo.eofs == 1);
  CHECK_FALSE(t.disconnecting());
  echo.transport().write("reply after EOF");
  CHECK(t.value() == "reply after EOF");

  StringTransport w;  // lose_write_connection, then the peer's EOF: both sides are shut
  Echo both;
  both.keep_open_on_eof = true;
  w.connect(both);
  w.lose_write_connection();
  w.receive_eof();
  CHECK(both.eofs == 1);     // told,
  CHECK(w.disconnecting());  // but its answer no longer matters
}

TEST_CASE("input after lose_connection is ignored, as reading stops") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.lose_connection();
  t.receive("late");
  CHECK(echo.received.empty());
}

TEST_CASE("StringTransport applies water marks when buffering") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.set_buffering(true);
  t.set_write_buffer_limits(10, 4);
  CHECK(t.write_buffer_limits().high == 10);
  CountingProducer p;
  t.register_producer(p, true);
  CHECK(t.producer() == &p);
  CHECK(t.streaming());
  t.write(std::string(11, 'x'));
  CHECK(p.pauses == 1);
  CHECK(t.producer_paused());
  CHECK(t.buffer_size() == 11);
  t.write("y");
  CHECK(p.pauses == 1);  // paused once, not per write
  t.drain(7);            // 5 left: above low
  CHECK(p.resumes == 0);
  t.drain(1);  // 4 left: at low
  CHECK(p.resumes == 1);
  CHECK_FALSE(t.producer_paused());
  CHECK(t.value().size() == 8);
  t.disconnect();
  CHECK(p.stops == 1);
  CHECK(t.producer() == nullptr);
}

TEST_CASE("a streaming producer registered above the high mark starts paused") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.set_buffering(true);
  t.set_write_buffer_limits(4, 0);
  t.write("12345");
  CountingProducer p;
  t.register_producer(p, true);
  CHECK(p.pauses == 1);
  t.set_write_buffer_limits(100, 50);  // raising the marks resumes it
  CHECK(p.resumes == 1);
}

TEST_CASE("a pull producer is asked when the buffer is empty and it has written") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.set_buffering(true);
  CountingProducer p;
  t.register_producer(p, false);
  CHECK_FALSE(t.streaming());
  CHECK(p.resumes == 1);
  t.drain();
  CHECK(p.resumes == 1);  // it wrote nothing: not asked again
  t.write("chunk");
  t.drain(2);
  CHECK(p.resumes == 1);
  t.drain();
  CHECK(p.resumes == 2);
  t.write("last");
  t.lose_write_connection();
  t.drain();
  CHECK(p.resumes == 2);  // never resumed after lose_write_connection
  t.unregister_producer();
  t.disconnect();
  CHECK(p.stops == 0);  // unregistered producers hear nothing
}

TEST_CASE("producers hear nothing once closing, and stop when lost") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.set_buffering(true);
  t.set_write_buffer_limits(2, 0);
  CountingProducer p;
  t.register_producer(p, true);
  t.write("abc");
  CHECK(p.pauses == 1);
  t.lose_connection();
  t.drain();
  CHECK(p.resumes == 0);
  t.disconnect(Reason(error::connection_lost));
  CHECK(p.stops == 1);
  CountingProducer late;
  t.register_producer(late, true);  // after the end: stopped at once
  CHECK(late.stops == 1);
  CHECK(t.producer() == nullptr);
}

TEST_CASE("stop_producing on the transport is lose_connection") {
  StringTransport t;
  Echo echo;
  t.connect(echo);
  t.stop_producing();
  CHECK(t.disconnecting());
}

TEST_CASE("StringTransport holds input back while an answer keeps the buffer above the high mark") {
  StringTransport t;
  Echo echo;
  t.set_buffering(true);
  t.connect(echo);
  t.set_write_buffer_limits(10, 4);
  CHECK(t.pauses_reading_when_full());
  t.receive("0123456789AB");  // the echo takes the buffer to 12 > 10
  CHECK(t.buffer_size() == 12);
  t.receive("held");
  t.receive_eof();
  CHECK(echo.received == "0123456789AB");
  CHECK(t.held_back() == 4);
  t.drain(7);  // 5 left: still above the low mark
  t.receive("");
  CHECK(t.held_back() == 4);
  t.drain(1);  // 4: at the low mark, input flows again
  t.receive("");
  CHECK(echo.received == "0123456789ABheld");
  CHECK(echo.eofs == 1);
  CHECK(t.disconnecting());
}

TEST_CASE("StringTransport with set_pause_reading_when_full(false) reads on") {
  StringTransport t;
  Echo echo;
  t.set_buffering(true);
  t.connect(echo);
  t.set_write_buffer_limits(10, 4);
  t.set_pause_reading_when_full(false);
  CHECK_FALSE(t.pauses_reading_when_full());
  t.receive("0123456789AB");
  t.receive("more");
  CHECK(echo.received == "0123456789ABmore");
  CHECK(t.buffer_size() == 16);
}
