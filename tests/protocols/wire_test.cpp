#include "protocols/wire.hpp"

#include <doctest/doctest.h>

#include <string>

#include "tests/protocols/splitting.hpp"

using namespace torsion;
using torsion::test::Feeder;
using torsion::test::for_every_cut;
using torsion::testing::StringTransport;

TEST_CASE("Echo writes back every byte at every split point") {
  const std::string input = "hello\r\n\0binary\xff bytes";
  for_every_cut<Echo>(
      input, [] { return std::make_unique<Echo>(); },
      [&](Echo&, StringTransport& t, Feeder&) {
        CHECK(t.value() == input);
        CHECK(t.connected());
      });
}

TEST_CASE("Discard writes nothing and stays open") {
  for_every_cut<Discard>(
      "anything at all", [] { return std::make_unique<Discard>(); },
      [](Discard&, StringTransport& t, Feeder&) {
        CHECK(t.value().empty());
        CHECK(t.connected());
      });
}

TEST_CASE("Chargen lines follow RFC 864") {
  const std::string first = Chargen::line(0);
  CHECK(first.size() == 74);
  CHECK(first.substr(0, 10) == " !\"#$%&'()");
  CHECK(first.substr(72) == "\r\n");
  CHECK(Chargen::line(1)[0] == '!');
  CHECK(Chargen::line(95) == first);  // the cycle has 95 characters
  CHECK(Chargen::line(94)[0] == '~');
  CHECK(Chargen::line(94)[1] == ' ');
}

TEST_CASE("Chargen is a pull producer: a slow reader never makes it queue more than a chunk") {
  StringTransport t;
  t.set_buffering(true);  // nothing leaves until the test drains it
  Chargen c;
  t.connect(c);
  CHECK(t.producer() == &c);
  CHECK_FALSE(t.streaming());
  const std::size_t chunk = Chargen::kLinesPerChunk * Chargen::kLineSize;
  CHECK(t.buffer_size() == chunk);
  c.data_received("input is ignored");
  CHECK(t.buffer_size() == chunk);  // no new chunk until the buffer empties
  t.drain(chunk / 2);
  CHECK(t.buffer_size() == chunk - chunk / 2);
  for (int i = 0; i < 20; ++i) {
    t.drain();
    CHECK(t.buffer_size() == chunk);  // each empty buffer pulls exactly one chunk
  }
  t.drain();  // pulls one more chunk, which stays queued
  CHECK(c.lines_sent() == 22 * Chargen::kLinesPerChunk);
  std::string expected;
  for (std::size_t n = 0; n < 21 * Chargen::kLinesPerChunk; ++n) expected += Chargen::line(n);
  CHECK(t.value() == expected);
  t.disconnect();
  CHECK(t.producer() == nullptr);
}

TEST_CASE("Daytime writes the time and closes") {
  StringTransport t;
  Daytime d([] { return std::time_t{0}; });
  t.connect(d);
  CHECK(t.value() == "Thu Jan  1 00:00:00 1970\r\n");
  CHECK(t.disconnecting());
  CHECK(Daytime::format(1795671784) == "Thu Nov 26 05:43:04 2026\r\n");
}

TEST_CASE("QOTD writes the quote and closes") {
  StringTransport t;
  Qotd q("Simple is better than complex.");
  t.connect(q);
  CHECK(t.value() == "Simple is better than complex.\r\n");
  CHECK(t.disconnecting());
}
