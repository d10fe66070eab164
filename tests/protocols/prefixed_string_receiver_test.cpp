#include "protocols/prefixed_string_receiver.hpp"

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

template <std::size_t N>
class Tester : public PrefixedStringReceiver<N> {
 public:
  using PrefixedStringReceiver<N>::PrefixedStringReceiver;
  Strings strings;
  std::vector<std::size_t> exceeded;
  void string_received(std::string_view payload) override {
    strings.emplace_back(payload);
    if (payload == "PAUSE") this->pause_producing();
    if (payload == "QUIT") this->transport().lose_connection();
  }
  void length_limit_exceeded(std::size_t length) override {
    exceeded.push_back(length);
    PrefixedStringReceiver<N>::length_limit_exceeded(length);
  }
};

// The wire form of `strings`, made by send_string itself.
template <std::size_t N>
std::string frames(const Strings& strings) {
  StringTransport t;
  Tester<N> p;
  t.connect(p);
  for (const auto& s : strings) p.send_string(s);
  return t.value();
}

template <std::size_t N>
std::string prefix(std::size_t length) {
  std::string out(N, '\0');
  for (std::size_t i = N; i-- > 0; length >>= 8) out[i] = static_cast<char>(length & 0xff);
  return out;
}

}  // namespace

#define PREFIX_TESTS(N)                                                                        \
  TEST_CASE("Int" #N "StringReceiver: strings at every split point") {                         \
    const Strings sent{"hello", "", "a", std::string(40, 'z'), std::string("\0\1\2", 3)};      \
    for_every_cut<Tester<N / 8>>(                                                              \
        frames<N / 8>(sent), [] { return std::make_unique<Tester<N / 8>>(); },                 \
        [&](Tester<N / 8>& p, StringTransport& t, Feeder&) {                                   \
          CHECK(p.strings == sent);                                                            \
          CHECK(t.connected());                                                                \
        });                                                                                    \
  }                                                                                            \
  TEST_CASE("Int" #N "StringReceiver: a length over the limit closes before the payload") {    \
    const std::string input =                                                                  \
        frames<N / 8>({"ok", "1234"}) + prefix<N / 8>(5) + "12345" + frames<N / 8>({"never"}); \
    for_every_cut<Tester<N / 8>>(                                                              \
        input, [] { return std::make_unique<Tester<N / 8>>(4); },                              \
        [&](Tester<N / 8>& p, StringTransport& t, Feeder&) {                                   \
          CHECK(p.strings == Strings{"ok", "1234"});                                           \
          CHECK(p.exceeded == std::vector<std::size_t>{5});                                    \
          REQUIRE(p.rejection());                                                              \
          CHECK(p.rejection()->is(error::length_limit_exceeded));                              \
          CHECK(t.disconnecting());                                                            \
          p.data_received(frames<N / 8>({"x"}));                                               \
          CHECK(p.strings.size() == 2);                                                        \
        });                                                                                    \
  }                                                                                            \
  TEST_CASE("Int" #N "StringReceiver: pause holds strings, resume delivers them") {            \
    const std::string input = frames<N / 8>({"a", "PAUSE", "b", "c"});                         \
    for_every_cut<Tester<N / 8>>(                                                              \
        input, [] { return std::make_unique<Tester<N / 8>>(); },                               \
        [&](Tester<N / 8>& p, StringTransport& t, Feeder& feeder) {                            \
          CHECK(p.strings == Strings{"a", "PAUSE"});                                           \
          CHECK(t.reading_paused());                                                           \
          p.resume_producing();                                                                \
          feeder.pump();                                                                       \
          CHECK(feeder.done());                                                                \
          CHECK(p.strings == Strings{"a", "PAUSE", "b", "c"});                                 \
        });                                                                                    \
  }                                                                                            \
  TEST_CASE("Int" #N "StringReceiver: closing inside string_received stops delivery") {        \
    for_every_cut<Tester<N / 8>>(                                                              \
        frames<N / 8>({"a", "QUIT", "b"}), [] { return std::make_unique<Tester<N / 8>>(); },   \
        [&](Tester<N / 8>& p, StringTransport& t, Feeder&) {                                   \
          CHECK(p.strings == Strings{"a", "QUIT"});                                            \
          CHECK(t.disconnecting());                                                            \
        });                                                                                    \
  }

PREFIX_TESTS(8)
PREFIX_TESTS(16)
PREFIX_TESTS(32)

TEST_CASE("prefixes are big-endian and send_string refuses what the prefix cannot hold") {
  CHECK(frames<2>({std::string(258, 'x')}).substr(0, 2) == std::string("\x01\x02", 2));
  CHECK(frames<4>({"abc"}) == std::string("\0\0\0\3abc", 7));
  StringTransport t;
  Tester<1> p;
  t.connect(p);
  CHECK_NOTHROW(p.send_string(std::string(255, 'x')));
  CHECK_THROWS_AS(p.send_string(std::string(256, 'x')), std::length_error);
  CHECK(Int8StringReceiver::kDefaultMaxLength == 255);
  CHECK(Int16StringReceiver::kDefaultMaxLength == 65535);
  CHECK(Int32StringReceiver::kDefaultMaxLength == 99999);
  Tester<1> capped(100000);
  CHECK(capped.max_length() == 255);
}

TEST_CASE("a partial frame never holds more than prefix + limit bytes") {
  StringTransport t;
  Tester<4> p(1000);
  t.connect(p);
  p.data_received(prefix<4>(1000) + std::string(999, 'x'));
  CHECK(p.strings.empty());
  p.data_received("y" + prefix<4>(1001));
  REQUIRE(p.strings.size() == 1);
  CHECK(p.strings[0].size() == 1000);
  CHECK(p.exceeded == std::vector<std::size_t>{1001});
  CHECK(t.disconnecting());
}
