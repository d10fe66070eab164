#include "protocols/netstring_receiver.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/protocols/splitting.hpp"

using namespace torsion;
using torsion::test::Feeder;
using torsion::test::for_every_cut;
using torsion::testing::StringTransport;

namespace {

using Strings = std::vector<std::string>;

class Tester : public NetstringReceiver {
 public:
  using NetstringReceiver::NetstringReceiver;
  Strings strings;
  int rejected = 0;
  void string_received(std::string_view payload) override {
    strings.emplace_back(payload);
    if (payload == "QUIT") transport().lose_connection();
  }
  void input_rejected(const Reason& reason) override {
    ++rejected;
    CHECK(rejection());
    CHECK(rejection()->kind() == reason.kind());
    NetstringReceiver::input_rejected(reason);
  }
};

std::function<std::unique_ptr<Tester>()> make(
    std::size_t max = NetstringReceiver::kDefaultMaxLength) {
  return [max] { return std::make_unique<Tester>(max); };
}

// `input` yields `good` and then is rejected with `kind` (or accepted if kind is none).
void expect(const std::string& input, const Strings& good, std::optional<error> kind,
            std::size_t max = NetstringReceiver::kDefaultMaxLength) {
  INFO("input: " << input);
  for_every_cut<Tester>(input, make(max), [&](Tester& p, StringTransport& t, Feeder&) {
    CHECK(p.strings == good);
    if (kind) {
      CHECK(p.rejected == 1);
      REQUIRE(p.rejection());
      CHECK(p.rejection()->is(*kind));
      CHECK(t.disconnecting());  // a clean close
      CHECK_FALSE(t.aborted());
    } else {
      CHECK(p.rejected == 0);
      CHECK(t.connected());
    }
  });
}

}  // namespace

TEST_CASE("netstrings at every split point") {
  expect("5:hello,0:,3:a:,,12:hello\r\nworld,", {"hello", "", "a:,", "hello\r\nworld"},
         std::nullopt);
}

TEST_CASE("a string is delivered only with its comma") {
  for_every_cut<Tester>("3:abc", make(), [](Tester& p, StringTransport& t, Feeder&) {
    CHECK(p.strings.empty());
    CHECK(t.connected());
    p.data_received(",");
    CHECK(p.strings == Strings{"abc"});
  });
}

TEST_CASE("malformed netstrings close cleanly with a reason") {
  expect("3:abc,05:hello,", {"abc"}, error::malformed_input);  // leading zero
  expect("00:,", {}, error::malformed_input);                  // leading zero on 0
  expect("3:abc,3:abcX", {"abc"}, error::malformed_input);     // missing comma
  expect("0:X", {}, error::malformed_input);                   // missing comma, empty string
  expect("3:abc,:abc,", {"abc"}, error::malformed_input);      // empty length
  expect("3x:abc,", {}, error::malformed_input);               // non-digit
  expect("-3:abc,", {}, error::malformed_input);               // sign
  expect(" 3:abc,", {}, error::malformed_input);               // space
  expect("GET / HTTP/1.0\r\n", {}, error::malformed_input);    // not a netstring at all
}

TEST_CASE("a length over the limit is rejected at the digit that crosses it") {
  expect("5:hello,6:hello!,", {"hello"}, error::length_limit_exceeded, 5);
  expect("100000:", {}, error::length_limit_exceeded);  // Twisted's default limit is 99999
  expect("99999999999999999999999999999999:", {}, error::length_limit_exceeded);
  expect("99999:", {}, std::nullopt);  // exactly at the limit: accepted, waiting for data
  // Rejected before the ':' arrives, however the length is split.
  expect("123456", {}, error::length_limit_exceeded, 12345);
}

TEST_CASE("bytes after a rejection are ignored") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.data_received("x");
  CHECK(p.rejected == 1);
  p.data_received("3:abc,");
  CHECK(p.strings.empty());
  CHECK(p.rejected == 1);
}

TEST_CASE("closing inside string_received stops delivery") {
  for_every_cut<Tester>("1:a,4:QUIT,1:b,", make(), [](Tester& p, StringTransport& t, Feeder&) {
    CHECK(p.strings == Strings{"a", "QUIT"});
    CHECK(t.disconnecting());
    CHECK_FALSE(p.rejection());
  });
}

TEST_CASE("send_string frames the payload") {
  StringTransport t;
  Tester p;
  t.connect(p);
  p.send_string("hello");
  p.send_string("");
  p.send_string(std::string(12, 'x'));
  CHECK(t.value() == "5:hello,0:,12:xxxxxxxxxxxx,");
  CHECK_THROWS_AS(Tester(NetstringReceiver::kMaxMaxLength + 1), std::invalid_argument);
}
