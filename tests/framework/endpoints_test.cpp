#include "framework/endpoints.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/endpoint_error.hpp"

using torsion::EndpointDescription;
using torsion::EndpointError;
using torsion::test::error_of;
using KV = std::vector<std::pair<std::string, std::string>>;

namespace {

EndpointError parse_error(std::string_view text) {
  return error_of([&] { (void)EndpointDescription::parse(text); });
}

}  // namespace

TEST_CASE("type, positional and keyword parts") {
  const auto d = EndpointDescription::parse("tcp:8080:interface=127.0.0.1:backlog=128");
  CHECK(d.type() == "tcp");
  CHECK(d.positional() == std::vector<std::string>{"8080"});
  CHECK(d.keywords() == KV{{"interface", "127.0.0.1"}, {"backlog", "128"}});
  CHECK(d.text() == "tcp:8080:interface=127.0.0.1:backlog=128");
}

TEST_CASE("a type alone has no parameters") {
  const auto d = EndpointDescription::parse("stdio");
  CHECK(d.type() == "stdio");
  CHECK(d.positional().empty());
  CHECK(d.keywords().empty());
}

TEST_CASE("backslash escapes colon, equals and backslash") {
  const auto d = EndpointDescription::parse(R"(tcp:8080:interface=\:\:1:path=a\=b\\c:x\:y)");
  CHECK(d.get("interface") == "::1");
  CHECK(d.get("path") == R"(a=b\c)");
  CHECK(d.positional() == std::vector<std::string>{"8080", "x:y"});
}

TEST_CASE("a backslash before any other character makes it literal") {
  CHECK(EndpointDescription::parse(R"(unix:\a\/b)").positional() ==
        std::vector<std::string>{"a/b"});
}

TEST_CASE("escaped equals keeps a part positional") {
  const auto d = EndpointDescription::parse(R"(x:a\=b)");
  CHECK(d.positional() == std::vector<std::string>{"a=b"});
  CHECK(d.keywords().empty());
}

TEST_CASE("later equals signs belong to the value") {
  CHECK(EndpointDescription::parse("x:k=a=b").get("k") == "a=b");
}

TEST_CASE("empty parts and values are kept") {
  const auto d = EndpointDescription::parse("x::k=:");
  CHECK(d.positional() == std::vector<std::string>{"", ""});
  CHECK(d.get("k") == "");
}

TEST_CASE("escape_endpoint_value round-trips through parse") {
  for (std::string value : {"::1", R"(a\b)", "k=v", "plain", "", R"(\:=\)"}) {
    const auto d = EndpointDescription::parse("x:v=" + torsion::escape_endpoint_value(value));
    CHECK(d.get("v") == value);
  }
  CHECK(torsion::escape_endpoint_value("::1") == R"(\:\:1)");
}

TEST_CASE("bad descriptions name the parameter and the value") {
  SUBCASE("empty") { CHECK(parse_error("").parameter() == "description"); }
  SUBCASE("empty type") {
    const auto e = parse_error(":8080");
    CHECK(e.parameter() == "type");
    CHECK(std::string(e.what()).find("must not be empty") != std::string::npos);
  }
  SUBCASE("type written as key=value") {
    const auto e = parse_error("port=80");
    CHECK(e.parameter() == "type");
    CHECK(e.value() == "port=80");
  }
  SUBCASE("dangling backslash") {
    const auto e = parse_error(R"(tcp:80\)");
    CHECK(e.parameter() == "description");
    CHECK(std::string(e.what()).find("lone backslash") != std::string::npos);
  }
  SUBCASE("keyword without a name") {
    const auto e = parse_error("tcp:=5");
    CHECK(e.value() == "=5");
  }
  SUBCASE("keyword given twice") {
    const auto e = parse_error("tcp:port=1:port=2");
    CHECK(e.parameter() == "port");
    CHECK(e.value() == "2");
    CHECK(std::string(e.what()) == "endpoint 'tcp:port=1:port=2': parameter 'port' is given "
                                   "twice, got '2'");
  }
}

TEST_CASE("limits: length and number of parts") {
  const std::string longest = "x:k=" + std::string(torsion::kMaxEndpointDescription - 4, 'a');
  CHECK(EndpointDescription::parse(longest).get("k")->size() ==
        torsion::kMaxEndpointDescription - 4);
  const auto too_long = parse_error(longest + "a");
  CHECK(too_long.parameter() == "description");
  CHECK(std::string(too_long.what()).find("4097 characters") != std::string::npos);
  // The message shows a bounded excerpt, not the whole input.
  CHECK(std::string(too_long.what()).size() < 300);

  std::string parts = "x";
  for (std::size_t i = 1; i < torsion::kMaxEndpointParts; ++i) parts += ":p";
  CHECK(EndpointDescription::parse(parts).positional().size() == torsion::kMaxEndpointParts - 1);
  CHECK(parse_error(parts + ":p").parameter() == "description");
}

TEST_CASE("name_positional maps arguments to keywords") {
  auto d = EndpointDescription::parse("tcp:example.com:80:timeout=5");
  d.name_positional({"host", "port"});
  CHECK(d.positional().empty());
  CHECK(d.get("host") == "example.com");
  CHECK(d.required_integer("port", 1, 65535) == 80);
  CHECK(d.number("timeout", 0, 100, 30) == 5);

  SUBCASE("fewer positionals than names") {
    auto e = EndpointDescription::parse("tcp:example.com:port=80");
    e.name_positional({"host", "port"});
    CHECK(e.get("port") == "80");
  }
  SUBCASE("too many positionals") {
    auto e = EndpointDescription::parse("tcp:a:b:c");
    const auto err = error_of([&] { e.name_positional({"host", "port"}); });
    CHECK(err.parameter() == "argument 3");
    CHECK(err.value() == "c");
  }
  SUBCASE("given both ways") {
    auto e = EndpointDescription::parse("tcp:80:port=81");
    const auto err = error_of([&] { e.name_positional({"port"}); });
    CHECK(err.parameter() == "port");
    CHECK(err.value() == "80");
  }
}

TEST_CASE("check_known rejects unknown keywords and leftover positionals") {
  const auto d = EndpointDescription::parse("tcp:port=80:backlgo=5");
  const auto e = error_of([&] { d.check_known({"port", "backlog"}); });
  CHECK(e.parameter() == "backlgo");
  CHECK(e.value() == "5");
  CHECK(std::string(e.what()).find("known: port, backlog") != std::string::npos);
  const auto p = EndpointDescription::parse("tcp:80");
  CHECK(error_of([&] { p.check_known({"port"}); }).parameter() == "argument 1");
  CHECK_NOTHROW(EndpointDescription::parse("tcp:port=80").check_known({"port"}));
}

TEST_CASE("typed getters validate and name the parameter") {
  const auto d = EndpointDescription::parse(
      "x:n=12:neg=-3:big=99999999999999999999999:word=abc:sp= 1:plus=+1:f=2.5:inf=inf:"
      "yes=yes:off=off:maybe=maybe:empty=");
  CHECK(d.integer("n", 0, 100, 7) == 12);
  CHECK(d.integer("absent", 0, 100, 7) == 7);
  CHECK(d.integer("neg", -5, 5, 0) == -3);
  CHECK(d.number("f", 0, 10, 0) == 2.5);
  CHECK(d.number("n", 0, 100, 0) == 12);
  CHECK(d.boolean("yes", false));
  CHECK_FALSE(d.boolean("off", true));
  CHECK(d.boolean("absent", true));
  CHECK(d.string("absent", "dflt") == "dflt");
  CHECK(d.string("word", "dflt") == "abc");

  struct Bad {
    const char* key;
    const char* value;
  };
  for (auto [key, value] : {Bad{"n", "12"}, Bad{"neg", "-3"}, Bad{"big", "99999999999999999999999"},
                            Bad{"word", "abc"}, Bad{"sp", " 1"}, Bad{"plus", "+1"},
                            Bad{"empty", ""}}) {
    CAPTURE(key);
    const auto e = error_of([&] { (void)d.integer(key, 0, 10, 0); });
    CHECK(e.parameter() == key);
    CHECK(e.value() == value);
    CHECK(std::string(e.what()).find("must be an integer in 0..10") != std::string::npos);
  }
  CHECK(error_of([&] { (void)d.number("inf", 0, 1e300, 0); }).parameter() == "inf");
  CHECK(error_of([&] { (void)d.number("f", 0, 1, 0); }).value() == "2.5");
  CHECK(error_of([&] { (void)d.boolean("maybe", false); }).value() == "maybe");

  const auto missing = error_of([&] { (void)d.required("host"); });
  CHECK(missing.parameter() == "host");
  CHECK(std::string(missing.what()).find("required parameter 'host' is missing") !=
        std::string::npos);
  CHECK(error_of([&] { (void)d.required("empty"); }).parameter() == "empty");
  CHECK(d.required("empty", true).empty());
  CHECK(error_of([&] { (void)d.required_integer("absent", 0, 1); }).parameter() == "absent");
}

TEST_CASE("parse never crashes on arbitrary bytes") {
  // Every short string over an alphabet of the special characters: either a description
  // or an EndpointError, nothing else.
  const std::string alphabet = ":=\\a";
  std::size_t parsed = 0;
  std::size_t rejected = 0;
  for (std::size_t len = 0; len <= 6; ++len) {
    std::vector<std::size_t> digits(len, 0);
    for (;;) {
      std::string s;
      for (auto i : digits) s += alphabet[i];
      try {
        (void)EndpointDescription::parse(s);
        ++parsed;
      } catch (const EndpointError&) {
        ++rejected;
      }
      std::size_t i = 0;
      while (i < len && ++digits[i] == alphabet.size()) digits[i++] = 0;
      if (i == len) break;
    }
  }
  CHECK(parsed > 0);
  CHECK(rejected > 0);
  CHECK(parsed + rejected == (1 + 4 + 16 + 64 + 256 + 1024 + 4096));
}
