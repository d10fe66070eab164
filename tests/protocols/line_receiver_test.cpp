#include "protocols/line_receiver.hpp"

#include <doctest/doctest.h>

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
//   "DELIM x" switch the delimiter to x.
class Tester : public LineReceiver {
 public:
  using LineReceiver::LineReceiver;
  Events events;
  std::size_t raw_wanted = 0;
  std::string raw;
  int exceeded = 0;
  bool keep_open_on_exceeded = false;

  void line_received(std::string_view line) override {
    events.push_back("L:" + std::string(line));
    if (line.starts_with("RAW ")) {
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

TEST_CASE("line_length_exceeded that keeps the connection goes on with the next bytes") {
  for_every_cut<Tester>(
      "abcdefgh\r\nok\r\nabcd\r\r\r\n\r\nla\r\n",
      [] {
        auto p = std::make_unique<Tester>("\r\n", 3);
        p->keep_open_on_exceeded = true;
        return p;
      },
      [](Tester& p, StringTransport& t, Feeder&) {
        CHECK(t.connected());
        CHECK(p.events == Events{"X:abcd", "L:ok", "X:abcd", "L:", "L:la"});
      });
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
