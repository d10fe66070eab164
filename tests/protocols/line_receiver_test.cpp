#include "protocols/line_receiver.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/protocols/splitting.hpp"

using namespace torsion;
using torsion::test::Feeder;
using torsion::test::for_every_cut;
using torsion::testing::StringTransport;

namespace {

using Events = std::vector<std::string>;

// Records lines as "L:<line>" and raw data as "R:<bytes>" (consecutive raw pieces merged,
// since how raw data is cut depends on the reads). Commands in lines drive it:
//   "RAW n"  switch to raw mode for n bytes, then back to line mode with the rest;
//   "PAUSE"  pause the receiver;  "TPAUSE" pause only the transport;
//   "QUIT"   lose_connection;     "ABORT" abort_connection;
//   "DELIM x" switch the delimiter to x;
//   "SIZE n" expect_raw(n): n bytes raw, then back to lines by itself.
class Tester : public LineReceiver {
 public:
  using LineReceiver::LineReceiver;
  Events events;
  std::size_t raw_wanted = 0;
  std::string raw;
  int exceeded = 0;
  bool keep_open_on_exceeded = false;
  bool counted = false;  // inside an expect_raw

  void line_received(std::string_view line) override {
    events.push_back("L:" + std::string(line));
    if (line.starts_with("SIZE ")) {
      raw.clear();
      counted = true;
      expect_raw(std::stoul(std::string(line.substr(5))));
      if (line_mode()) {  // expect_raw(0)
        counted = false;
        events.push_back("R:");
      }
    } else if (line.starts_with("RAW ")) {
      raw_wanted = std::stoul(std::string(line.substr(4)));
      raw.clear();
      set_raw_mode();
    } else if (line == "PAUSE") {
      pause_producing();
    } else if (line == "TPAUSE") {
      transport().pause_producing();
    } else if (line == "QUIT") {
      transport().lose_connection();
    } else if (line == "ABORT") {
      transport().abort_connection();
    } else if (line.starts_with("DELIM ")) {
      set_delimiter(std::string(line.substr(6)));
    }
  }

  void raw_data_received(std::string_view data) override {
    if (counted) {
      CHECK_FALSE(data.empty());
      raw.append(data);
      if (raw_remaining() == 0) {
        CHECK(line_mode());  // back in line mode during the last piece
        counted = false;
        events.push_back("R:" + raw);
      } else {
        CHECK_FALSE(line_mode());
      }
      return;
    }
    const std::size_t take = std::min(data.size(), raw_wanted - raw.size());
    raw.append(data.substr(0, take));
    if (raw.size() == raw_wanted) {
      events.push_back("R:" + raw);
      set_line_mode(data.substr(take));
    }
  }

  void line_length_exceeded(std::string_view data) override {
    ++exceeded;
    CHECK(data.size() > max_length());
    events.push_back("X:" + std::string(data.substr(0, max_length() + 1)));
    if (!keep_open_on_exceeded) LineReceiver::line_length_exceeded(data);
  }
};

std::function<std::unique_ptr<Tester>()> make_tester(std::string delimiter = "\r\n",
                                                     std::size_t max = 64) {
  return [=] { return std::make_unique<Tester>(delimiter, max); };
}

}  // namespace

TEST_CASE("lines at every split point") {
  for_every_cut<Tester>("hello\r\nworld\r\n\r\nlast", make_tester(),
                        [](Tester& p, StringTransport& t, Feeder&) {
                          CHECK(p.events == Events{"L:hello", "L:world", "L:"});
                          CHECK(t.connected());
                          CHECK(p.clear_line_buffer() == "last");
                          CHECK(p.clear_line_buffer().empty());
                        });
}

TEST_CASE("a multi-byte delimiter whose prefix appears in the data") {
  for_every_cut<Tester>("aEbEEcENENDxENDEND tail E", make_tester("END"),
                        [](Tester& p, StringTransport&, Feeder&) {
                          CHECK(p.events == Events{"L:aEbEEcEN", "L:x", "L:"});
                          CHECK(p.clear_line_buffer() == " tail E");
                        });
}

TEST_CASE("a one-byte delimiter") {
  for_every_cut<Tester>("one\ntwo\r\n\nthree", make_tester("\n"),
                        [](Tester& p, StringTransport&, Feeder&) {
                          CHECK(p.events == Events{"L:one", "L:two\r", "L:"});
                        });
}

TEST_CASE("send_line appends the delimiter") {
  StringTransport t;
  Tester p("\n");
  t.connect(p);
  p.send_line("hi");
  p.send_line("");
  CHECK(t.value() == "hi\n\n");
  CHECK(p.delimiter() == "\n");
}

TEST_CASE("an empty delimiter is a programming error") {
  CHECK_THROWS_AS(Tester(""), std::invalid_argument);
  Tester p;
  CHECK_THROWS_AS(p.set_delimiter(""), std::invalid_argument);
}

TEST_CASE("a line of exactly max_length is delivered, one byte more closes") {
  // max 5: "abcde" fits; "abcdef" does not, and the line after it is never delivered.
  for_every_cut<Tester>("abcde\r\nabcdef\r\nnext\r\n", make_tester("\r\n", 5),
                        [](Tester& p, StringTransport& t, Feeder&) {
                          CHECK(p.events == Events{"L:abcde", "X:abcdef"});
                          CHECK(p.exceeded == 1);
                          CHECK(t.disconnecting());
                          REQUIRE(p.rejection());
                          CHECK(p.rejection()->is(error::line_too_long));
                        });
}

TEST_CASE("an over-long line without a delimiter is caught once it cannot fit") {
  // max 5, "\r\n": 7 bytes without a delimiter can no longer end a 5-byte line.
  for_every_cut<Tester>("ok\r\nabcdefg", make_tester("\r\n", 5),
                        [](Tester& p, StringTransport& t, Feeder&) {
                          CHECK(p.events == Events{"L:ok", "X:abcdef"});
                          CHECK(t.disconnecting());
                        });
  // 6 bytes ending in half a delimiter may still be a valid line: no verdict yet.
  for_every_cut<Tester>("ok\r\nabcde\r", make_tester("\r\n", 5),
                        [](Tester& p, StringTransport& t, Feeder&) {
                          CHECK(p.events == Events{"L:ok"});
                          CHECK(t.connected());
                          p.data_received("\n");
                          CHECK(p.events == Events{"L:ok", "L:abcde"});
                        });
}

TEST_CASE("line_length_exceeded gets the line, its delimiter and the rest, as Twisted") {
  StringTransport t;
  std::string got;
  struct Keep : Tester {
    using Tester::Tester;
    std::string* got = nullptr;
    void line_length_exceeded(std::string_view data) override {
      *got = std::string(data);
      Tester::line_length_exceeded(data);
    }
  } k("\r\n", 5);
  k.keep_open_on_exceeded = true;
  k.got = &got;
  t.connect(k);
  k.data_received("ok\r\nabcdef\r\nnext\r\nmore");
  CHECK(got == "abcdef\r\nnext\r\nmore");  // Twisted: line + delimiter + the rest
  CHECK(k.buffered_size() == 0);             // ... which is then dropped
  CHECK(k.events == Events{"L:ok", "X:abcdef"});
  k.data_received("x\r\n");  // the next read begins a line
  CHECK(k.events == Events{"L:ok", "X:abcdef", "L:x"});
  k.data_received("abcdefg");  // no delimiter in max + delimiter size bytes: all of it
  CHECK(got == "abcdefg");
  CHECK(k.buffered_size() == 0);
  k.data_received("h\r\n");
  CHECK(k.events == Events{"L:ok", "X:abcdef", "L:x", "X:abcdef", "L:h"});
}

TEST_CASE("an over-long line whose start was buffered gets the rest of the read too") {
  struct Keep : Tester {
    using Tester::Tester;
    std::string got;
    void line_length_exceeded(std::string_view data) override { got = std::string(data); }
  };
  StringTransport t;
  Keep p("\r\n", 5);
  t.connect(p);
  p.data_received("ab\r\ncdefgh");
  p.data_received("ij\r\nk\r\n");
  CHECK(p.got == "cdefghij\r\nk\r\n");
  CHECK(p.events == Events{"L:ab"});
  CHECK(p.buffered_size() == 0);
  CHECK(t.connected());
}

TEST_CASE("switching to raw mode and back inside callbacks loses and repeats nothing") {
  const std::string input = "line1\r\nRAW 5\r\nab\r\ncline2\r\nRAW 3\r\n\r\n\rline3\r\nRAW 2\r\nxy";
  for_every_cut<Tester>(input, make_tester(), [](Tester& p, StringTransport&, Feeder&) {
    CHECK(p.events == Events{"L:line1", "L:RAW 5", "R:ab\r\nc", "L:line2", "L:RAW 3", "R:\r\n\r",
                             "L:line3", "L:RAW 2", "R:xy"});
    CHECK(p.line_mode());
    CHECK(p.clear_line_buffer().empty());
  });
}

TEST_CASE("set_raw_mode outside a callback delivers the buffered partial line as raw") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.data_received("a\r\npart");
  p.raw_wanted = 6;
  p.set_raw_mode();
  CHECK(p.raw == "part");
  p.data_received("ia");
  CHECK(p.events == Events{"L:a", "R:partia"});
}

TEST_CASE("set_line_mode(extra) outside a callback parses extra first") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.raw_wanted = 100;
  p.set_raw_mode();
  p.data_received("raw bytes");
  p.set_line_mode("x\r\ny");
  CHECK(p.events == Events{"L:x"});
  p.data_received("z\r\n");
  CHECK(p.events == Events{"L:x", "L:yz"});
}

TEST_CASE("pausing the receiver holds buffered lines until resume") {
  for_every_cut<Tester>("a\r\nPAUSE\r\nb\r\nc\r\n", make_tester(),
                        [](Tester& p, StringTransport& t, Feeder& feeder) {
                          CHECK(p.events == Events{"L:a", "L:PAUSE"});
                          CHECK(p.paused());
                          CHECK(t.reading_paused());
                          p.resume_producing();
                          CHECK_FALSE(t.reading_paused());
                          feeder.pump();
                          CHECK(feeder.done());
                          CHECK(p.events == Events{"L:a", "L:PAUSE", "L:b", "L:c"});
                        });
}

TEST_CASE("pause and resume inside the same callback keeps going") {
  struct P : Tester {
    void line_received(std::string_view line) override {
      Tester::line_received(line);
      pause_producing();
      resume_producing();
    }
  };
  StringTransport t;
  P p;
  t.connect(p);
  p.data_received("a\r\nb\r\n");
  CHECK(p.events == Events{"L:a", "L:b"});
  CHECK_FALSE(t.reading_paused());
}

TEST_CASE("pausing only the transport still delivers the lines of the current read") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.data_received("a\r\nTPAUSE\r\nb\r\nc");
  CHECK(p.events == Events{"L:a", "L:TPAUSE", "L:b"});
  CHECK(t.reading_paused());
  CHECK_FALSE(p.paused());
}

TEST_CASE("closing inside line_received stops delivery") {
  for (const char* cmd : {"QUIT", "ABORT"}) {
    const std::string input = std::string("a\r\n") + cmd + "\r\nb\r\nc\r\n";
    for_every_cut<Tester>(input, make_tester(), [&](Tester& p, StringTransport& t, Feeder&) {
      CHECK(p.events == Events{"L:a", std::string("L:") + cmd});
      CHECK_FALSE(t.connected());
    });
  }
}

TEST_CASE("changing the delimiter inside line_received applies to the rest") {
  for_every_cut<Tester>("DELIM |\r\nx|y|z", make_tester(),
                        [](Tester& p, StringTransport&, Feeder&) {
                          CHECK(p.events == Events{"L:DELIM |", "L:x", "L:y"});
                        });
}

TEST_CASE("clear_line_buffer inside line_received drops the rest of the read") {
  struct P : Tester {
    std::string cleared;
    void line_received(std::string_view line) override {
      Tester::line_received(line);
      if (line == "clear") cleared = clear_line_buffer();
    }
  };
  StringTransport t;
  P p;
  t.connect(p);
  p.data_received("clear\r\nx\r\ny");
  CHECK(p.cleared == "x\r\ny");
  CHECK(p.events == Events{"L:clear"});
  p.data_received("z\r\n");
  CHECK(p.events == Events{"L:clear", "L:z"});
}

namespace {

class OnlyTester : public LineOnlyReceiver {
 public:
  using LineOnlyReceiver::LineOnlyReceiver;
  Events events;
  void line_received(std::string_view line) override {
    events.push_back(std::string(line));
    if (line == "QUIT") transport().lose_connection();
  }
};

}  // namespace

TEST_CASE("LineOnlyReceiver: lines, limit and close at every split point") {
  const auto make = [] { return std::make_unique<OnlyTester>("\r\n", 6); };
  for_every_cut<OnlyTester>("one\r\n\r\nsix666\r\nQUIT\r\nafter\r\n", make,
                            [](OnlyTester& p, StringTransport& t, Feeder&) {
                              CHECK(p.events == Events{"one", "", "six666", "QUIT"});
                              CHECK(t.disconnecting());
                              CHECK_FALSE(p.rejection());
                            });
  for_every_cut<OnlyTester>("ok\r\nseven77\r\nnever\r\n", make,
                            [](OnlyTester& p, StringTransport& t, Feeder&) {
                              CHECK(p.events == Events{"ok"});
                              CHECK(t.disconnecting());
                              REQUIRE(p.rejection());
                              CHECK(p.rejection()->is(error::line_too_long));
                            });
  for_every_cut<OnlyTester>("ok\r\nnodelimiter", make,
                            [](OnlyTester& p, StringTransport& t, Feeder&) {
                              CHECK(p.events == Events{"ok"});
                              CHECK(t.disconnecting());
                            });
  StringTransport t;
  OnlyTester p;
  t.connect(p);
  p.send_line("x");
  CHECK(t.value() == "x\r\n");
}

TEST_CASE("pausing in raw mode holds raw data until resume") {
  struct P : Tester {
    void raw_data_received(std::string_view data) override {
      Tester::raw_data_received(data);
      if (!paused() && raw.size() < raw_wanted) pause_producing();
    }
  };
  for_every_cut<P>(
      "RAW 6\r\nabcdefline\r\n", [] { return std::make_unique<P>(); },
      [](P& p, StringTransport& t, Feeder& feeder) {
        for (int i = 0; i < 20 && p.paused(); ++i) {
          CHECK(t.reading_paused());
          p.resume_producing();
          feeder.pump();
        }
        CHECK(feeder.done());
        CHECK(p.events == Events{"L:RAW 6", "R:abcdef", "L:line"});
      });
}

TEST_CASE("an unlimited maximum does not overflow") {
  StringTransport t;
  Tester p("\r\n", static_cast<std::size_t>(-1));
  t.connect(p);
  p.data_received("abc");
  p.data_received("def\r\n");
  CHECK(p.events == Events{"L:abcdef"});
  CHECK(t.connected());
}

TEST_CASE("expect_raw hands over exactly n bytes, then lines, at every split point") {
  const std::string input = "a\r\nSIZE 5\r\nhe\r\nl\r\nSIZE 0\r\nb\r\nSIZE 3\r\n\r\n\rc\r\nSIZE 2\r\nxy";
  for_every_cut<Tester>(input, make_tester(), [](Tester& p, StringTransport&, Feeder&) {
    CHECK(p.events == Events{"L:a", "L:SIZE 5", "R:he\r\nl", "L:", "L:SIZE 0", "R:", "L:b",
                             "L:SIZE 3", "R:\r\n\r", "L:c", "L:SIZE 2", "R:xy"});
    CHECK(p.line_mode());
    CHECK(p.raw_remaining() == 0);
    CHECK(p.buffered_size() == 0);
  });
}

TEST_CASE("expect_raw pieces say how much is still to come") {
  std::vector<std::size_t> remaining;
  struct P : Tester {
    std::vector<std::size_t>* remaining = nullptr;
    void raw_data_received(std::string_view data) override {
      remaining->push_back(raw_remaining());
      Tester::raw_data_received(data);
    }
  } q;
  q.remaining = &remaining;
  StringTransport t2;
  t2.connect(q);
  q.data_received("SIZE 10\r\nabc");
  CHECK(q.raw_remaining() == 7);
  CHECK_FALSE(q.line_mode());
  q.data_received("defg");
  q.data_received("hijLINE\r\n");
  CHECK(remaining == std::vector<std::size_t>{7, 3, 0});
  CHECK(q.events == Events{"L:SIZE 10", "R:abcdefghij", "L:LINE"});
}

TEST_CASE("expect_raw called again from the last piece chains payloads") {
  // A length-prefixed record format: "n\r\n" then n bytes; each payload names the size of
  // the next raw block in its first byte.
  struct Chain : LineReceiver {
    Events events;
    void line_received(std::string_view line) override {
      events.push_back("L:" + std::string(line));
      if (!line.empty()) expect_raw(std::stoul(std::string(line)));
    }
    void raw_data_received(std::string_view data) override {
      piece.append(data);
      if (raw_remaining() > 0) return;
      events.push_back("R:" + piece);
      const char next = piece[0];
      piece.clear();
      if (next != '0') expect_raw(static_cast<std::size_t>(next - '0'));
    }
    std::string piece;
  };
  for_every_cut<Chain>(
      "3\r\n2ab1c0\r\n1\r\n0", [] { return std::make_unique<Chain>(); },
      [](Chain& p, StringTransport&, Feeder&) {
        CHECK(p.events == Events{"L:3", "R:2ab", "R:1c", "R:0", "L:", "L:1", "R:0"});
      });
}

TEST_CASE("expect_raw outside a callback delivers what is buffered") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.data_received("a\r\npart");
  p.counted = true;
  p.expect_raw(6);
  CHECK(p.raw == "part");
  CHECK(p.raw_remaining() == 2);
  p.data_received("ia\r\nb\r\n");
  CHECK(p.events == Events{"L:a", "R:partia", "L:", "L:b"});
}

TEST_CASE("lines after a mode switch are views into the read itself: nothing is copied") {
  // One read of many records, switching to raw and back each time, both ways (expect_raw
  // and Twisted's set_raw_mode + set_line_mode(rest)): every line and raw piece must point
  // into the read, which proves the rest is never copied.
  std::string input;
  for (int i = 0; i < 2000; ++i) input += (i % 2 ? "SIZE 7\r\npayload\r\n" : "RAW 7\r\npayload\r\n");
  struct InPlace : Tester {
    std::string_view read;
    int outside = 0;
    bool inside(std::string_view v) const {
      return std::less_equal<const char*>()(read.data(), v.data()) &&
             std::less_equal<const char*>()(v.data() + v.size(), read.data() + read.size());
    }
    void line_received(std::string_view line) override {
      outside += !inside(line);
      Tester::line_received(line);
    }
    void raw_data_received(std::string_view data) override {
      outside += !inside(data);
      Tester::raw_data_received(data);
    }
  };
  StringTransport t;
  InPlace p;
  p.read = input;
  t.connect(p);
  p.data_received(input);
  CHECK(p.outside == 0);
  CHECK(p.events.size() == 6000);
  CHECK(p.buffered_size() == 0);
}

TEST_CASE("data_received from inside a callback appends and returns, as Twisted") {
  struct Reenter : Tester {
    void line_received(std::string_view line) override {
      Tester::line_received(line);
      if (line == "more") data_received("x\r\nSIZE 2\r\n");  // after the rest of the read
    }
  };
  // In one read: the appended bytes follow the partial "c", as in Twisted's buffer.
  StringTransport t;
  Reenter p;
  t.connect(p);
  p.data_received("a\r\nmore\r\nb\r\nc");
  CHECK(p.events == Events{"L:a", "L:more", "L:b", "L:cx", "L:SIZE 2"});
  p.data_received("yz\r\n");
  CHECK(p.events == Events{"L:a", "L:more", "L:b", "L:cx", "L:SIZE 2", "R:yz", "L:"});
  // Split: the partial "b" of the first read is followed by the appended bytes.
  StringTransport t2;
  Reenter q;
  t2.connect(q);
  q.data_received("a\r\nmore\r\nb");
  q.data_received("\r\nc\r\n");
  CHECK(q.events == Events{"L:a", "L:more", "L:bx", "L:SIZE 2", "R:\r\n", "L:c"});
}

TEST_CASE("a LineReceiver registered as a producer stops delivering lines while paused") {
  // A relay: lines read from `in` are written to `out`; when out's buffer passes its high
  // mark the receiver is paused (reading and buffered lines both stop) until it drains.
  struct Sink : Protocol {};
  struct Relay : Tester {
    StringTransport* out = nullptr;
    void line_received(std::string_view line) override {
      Tester::line_received(line);
      out->write(std::string(line) + "\n");
    }
  };
  StringTransport in;
  StringTransport out;
  Sink sink;
  Relay relay;
  relay.out = &out;
  out.connect(sink);
  out.set_buffering(true);
  out.set_write_buffer_limits(8, 2);
  in.connect(relay);
  out.register_producer(relay, true);
  relay.data_received("aaaa\r\nbbbb\r\ncccc\r\ndddd\r\n");
  CHECK(relay.events == Events{"L:aaaa", "L:bbbb"});  // 10 bytes queued > 8: paused
  CHECK(relay.paused());
  CHECK(in.reading_paused());
  CHECK(relay.buffered_size() == 12);
  out.drain(8);  // 2 left: resumed, the held lines come out
  CHECK(relay.events == Events{"L:aaaa", "L:bbbb", "L:cccc", "L:dddd"});
  CHECK(relay.paused());  // paused again by "dddd"
  out.drain(100);
  CHECK_FALSE(relay.paused());
  CHECK_FALSE(in.reading_paused());
  CHECK(out.value() == "aaaa\nbbbb\ncccc\ndddd\n");
  out.unregister_producer();
}

TEST_CASE("stop_producing stops delivery and closes the connection") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.stop_producing();
  CHECK(p.paused());
  CHECK(t.disconnecting());
  p.data_received("a\r\n");
  CHECK(p.events.empty());
}

TEST_CASE("an idle receiver keeps no memory after a burst") {
  StringTransport t;
  Tester p("\r\n", 1 << 20);
  t.connect(p);
  const std::string big(200000, 'x');
  p.data_received(big.substr(0, 100000));
  CHECK(p.buffered_size() == 100000);
  p.data_received(big.substr(100000));
  p.data_received("\r\nend");
  CHECK(p.events.size() == 1);
  CHECK(p.buffered_size() == 3);
  CHECK(p.clear_line_buffer() == "end");
  CHECK(p.buffered_size() == 0);
}

TEST_CASE("LineOnlyReceiver calls line_length_exceeded as soon as the buffer exceeds max") {
  struct Keep : OnlyTester {
    using OnlyTester::OnlyTester;
    Events exceeded;
    void line_length_exceeded(std::string_view line) override {
      exceeded.emplace_back(line);
    }
  };
  StringTransport t;
  Keep p("\r\n", 5);
  t.connect(p);
  p.data_received("abcde\r");  // may still end a 5-byte line: no verdict
  CHECK(p.exceeded.empty());
  p.data_received("\nabcdef");  // 6 bytes: too long already
  CHECK(p.events == Events{"abcde"});
  CHECK(p.exceeded == Events{"abcdef"});
  CHECK(p.buffered_size() == 0);
  p.data_received("ghi\r\nok\r\n");  // the rest of the over-long line is skipped
  CHECK(p.events == Events{"abcde", "ok"});
  CHECK(p.exceeded == Events{"abcdef"});
  p.data_received("toolong\r\nnext\r\n");  // a whole over-long line: the line, as Twisted
  CHECK(p.exceeded == Events{"abcdef", "toolong"});
  CHECK(p.events == Events{"abcde", "ok", "next"});
  CHECK(t.connected());
}

namespace {

// Lines, raw data (Twisted's way: "RAW n" then set_line_mode(rest)) and over-long lines
// (kept open), each recorded with its bytes in hex, for comparison with Twisted's.
class TwistedWay : public LineReceiver {
 public:
  using LineReceiver::LineReceiver;
  std::string events;
  std::size_t wanted = 0;
  std::string raw;
  static std::string hex(std::string_view s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (const char c : s) {
      const auto b = static_cast<unsigned char>(c);
      (out += digits[b >> 4]) += digits[b & 15];
    }
    return out;
  }
  void line_received(std::string_view line) override {
    events += "L:" + hex(line) + " ";
    if (line.starts_with("RAW ")) {
      wanted = std::stoul(std::string(line.substr(4)));
      raw.clear();
      set_raw_mode();
    }
  }
  void raw_data_received(std::string_view data) override {
    const std::size_t take = std::min(data.size(), wanted - raw.size());
    raw.append(data.substr(0, take));
    if (raw.size() < wanted) return;
    events += "R:" + hex(raw) + " ";
    set_line_mode(data.substr(take));
  }
  void line_length_exceeded(std::string_view data) override { events += "X:" + hex(data) + " "; }
};

// The same protocol on Twisted's LineReceiver; reads cases from stdin, one per line:
// "max delimiter-hex chunk-hex,chunk-hex,..." and prints the events of each.
constexpr const char* kTwistedScript = R"PY(
import sys
from twisted.protocols import basic
from twisted.internet.testing import StringTransport
class P(basic.LineReceiver):
    def __init__(self):
        self.ev, self.wanted, self.raw = [], 0, b""
    def lineReceived(self, line):
        self.ev.append("L:" + line.hex())
        if line.startswith(b"RAW "):
            self.wanted, self.raw = int(line[4:]), b""
            self.setRawMode()
    def rawDataReceived(self, data):
        take = min(len(data), self.wanted - len(self.raw))
        self.raw += data[:take]
        if len(self.raw) < self.wanted:
            return
        self.ev.append("R:" + self.raw.hex())
        self.setLineMode(data[take:])
    def lineLengthExceeded(self, line):
        self.ev.append("X:" + line.hex())
for case in sys.stdin:
    max_length, delimiter, chunks = case.split()
    p = P()
    p.MAX_LENGTH, p.delimiter = int(max_length), bytes.fromhex(delimiter)
    p.makeConnection(StringTransport())
    for chunk in chunks.split(","):
        p.dataReceived(bytes.fromhex(chunk))
    print("".join(e + " " for e in p.ev))
)PY";

}  // namespace

TEST_CASE("LineReceiver agrees with Twisted's LineReceiver on the same reads") {
  std::string python;  // the first python3 that has Twisted (Debian's, not a pyenv one)
  for (const char* candidate : {"python3", "/usr/bin/python3"})
    if (python.empty() &&
        std::system((std::string(candidate) + " -c 'import twisted.protocols.basic' 2>/dev/null")
                        .c_str()) == 0)
      python = candidate;
  if (python.empty()) {
    MESSAGE("skipped: python3 with Twisted is not installed (apt-get install python3-twisted)");
    return;
  }
  struct Case {
    std::size_t max;
    std::string delimiter;
    std::string input;
  };
  const std::vector<Case> cases{
      {64, "\r\n", "one\r\ntwo\r\n\r\nRAW 5\r\nab\r\ncline\r\nRAW 0\r\nRAW 2\r\nxytail"},
      {5, "\r\n", "ok\r\nabcde\r\nabcdef\r\nnext\r\nmore"},  // over-long with a delimiter
      {5, "\r\n", "abcdefgh"},                              // and without one
      {5, "\r\n", "ab\r\ncdefghij\r\nk\r\n"},
      {8, "END", "aEbENDENDRAW 3ENDxyzcEN"},
      {16, "\n", "a\nRAW 4\n\n\n\n\nb\r\n"},
  };
  char path[] = "/tmp/torsion-twisted-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string_view script = kTwistedScript;
  REQUIRE(::write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size()));
  ::close(fd);
  // Every case cut three ways: whole, in 1-byte reads and in 3-byte reads.
  std::string stdin_text;
  std::vector<std::string> ours;
  for (const Case& c : cases) {
    for (std::size_t size : {c.input.size(), std::size_t{1}, std::size_t{3}}) {
      StringTransport t;
      TwistedWay p(c.delimiter, c.max);
      t.connect(p);
      std::string chunks;
      for (std::size_t at = 0; at < c.input.size(); at += size) {
        const std::string_view chunk = std::string_view(c.input).substr(at, size);
        p.data_received(chunk);
        chunks += (at ? "," : "") + TwistedWay::hex(chunk);
      }
      ours.push_back(p.events);
      stdin_text += std::to_string(c.max) + " " + TwistedWay::hex(c.delimiter) + " " + chunks + "\n";
    }
  }
  char in_path[] = "/tmp/torsion-twisted-in-XXXXXX";
  const int in_fd = ::mkstemp(in_path);
  REQUIRE(in_fd >= 0);
  REQUIRE(::write(in_fd, stdin_text.data(), stdin_text.size()) ==
          static_cast<ssize_t>(stdin_text.size()));
  ::close(in_fd);
  FILE* out = ::popen((python + " " + path + " < " + in_path).c_str(), "r");
  REQUIRE(out != nullptr);
  std::vector<std::string> theirs;
  char line[65536];
  while (std::fgets(line, sizeof line, out) != nullptr) {
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    theirs.push_back(s);
  }
  CHECK(::pclose(out) == 0);
  ::unlink(path);
  ::unlink(in_path);
  REQUIRE(theirs.size() == ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) {
    INFO("case " << i / 3 << ", cut " << i % 3);
    CHECK(ours[i] == theirs[i]);
  }
}
