// The Date field (issue 15): formatted once a second, however many responses share that
// second, and a new value as soon as the second changes. The server's wall clock is
// driven by a ManualClock through HttpServerOptions::wall_clock.

#include <doctest/doctest.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "web/detail/http_date.hpp"
#include "web/http_server.hpp"

using namespace torsion;
using namespace torsion::web;

namespace {

// One keep-alive connection whose wall clock is `epoch` plus the manual clock's seconds.
struct DateConn {
  testing::ManualClock clock;
  HttpFactory factory;
  testing::StringTransport t;
  std::unique_ptr<Protocol> p;
  DateConn(Handler h, std::time_t epoch)
      : factory(clock, std::move(h), options(clock, epoch)), p(factory.build_protocol(Address())) {
    t.connect(*p);
  }
  ~DateConn() {
    if (!t.lost()) t.disconnect();
  }
  static HttpServerOptions options(const testing::ManualClock& clock, std::time_t epoch) {
    HttpServerOptions o;
    o.wall_clock = [&clock, epoch] { return epoch + static_cast<std::time_t>(clock.seconds()); };
    return o;
  }
  // Sends one GET and returns the value of the answer's Date field ("" without one).
  std::string date_of_next_answer() {
    t.receive("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    clock.advance(0);
    const std::string out = t.take();
    const auto at = out.find("\r\nDate: ");
    REQUIRE(out.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    if (at == std::string::npos) return "";
    const auto from = at + 8;
    return out.substr(from, out.find("\r\n", from) - from);
  }
};

void hello(Request&, Response& res) { res.end("hello"); }

}  // namespace

TEST_CASE("http_date: 40 responses a second for 5 seconds format the Date field 5 times") {
  DateConn c(hello, 784111777);  // RFC 9110's example: Sun, 06 Nov 1994 08:49:37 GMT
  const std::vector<std::string> expected{
      "Sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:38 GMT", "Sun, 06 Nov 1994 08:49:39 GMT",
      "Sun, 06 Nov 1994 08:49:40 GMT", "Sun, 06 Nov 1994 08:49:41 GMT"};
  const std::uint64_t before = web::detail::http_date_formats();
  for (std::size_t second = 0; second < expected.size(); ++second) {
    for (int quarter = 0; quarter < 4; ++quarter) {  // the clock moves within the second
      for (int i = 0; i < 10; ++i) {
        INFO("second " << second << ", quarter " << quarter << ", response " << i);
        CHECK(c.date_of_next_answer() == expected[second]);
      }
      c.clock.advance(0.25);
    }
    // At most one formatting per second of clock time so far, and exactly one per new second.
    CHECK(web::detail::http_date_formats() - before == second + 1);
  }
  CHECK(web::detail::http_date_formats() - before == expected.size());
}

TEST_CASE("http_date: the value changes at the second, across midnight, and back in time") {
  DateConn c(hello, 784166399);  // Sun, 06 Nov 1994 23:59:59 GMT
  const std::uint64_t before = web::detail::http_date_formats();
  c.clock.advance(0.999);
  CHECK(c.date_of_next_answer() == "Sun, 06 Nov 1994 23:59:59 GMT");
  CHECK(c.date_of_next_answer() == "Sun, 06 Nov 1994 23:59:59 GMT");
  c.clock.advance(0.001);
  CHECK(c.date_of_next_answer() == "Mon, 07 Nov 1994 00:00:00 GMT");
  CHECK(web::detail::http_date_formats() - before == 2);
  // The cache holds a second, not a latest time: a wall clock set back is followed.
  CHECK(http_date(784166399) == "Sun, 06 Nov 1994 23:59:59 GMT");
  CHECK(c.date_of_next_answer() == "Mon, 07 Nov 1994 00:00:00 GMT");
  CHECK(web::detail::http_date_formats() - before == 4);
}

TEST_CASE("http_date: a handler's own Date field is sent as it is, and none is formatted") {
  DateConn c(
      [](Request&, Response& res) {
        Response r(200, "dated");
        r.headers().set("Date", "Tue, 15 Nov 1994 08:12:31 GMT");
        res.end(std::move(r));
      },
      784111777);
  const std::uint64_t before = web::detail::http_date_formats();
  for (int i = 0; i < 3; ++i) CHECK(c.date_of_next_answer() == "Tue, 15 Nov 1994 08:12:31 GMT");
  CHECK(web::detail::http_date_formats() == before);
}
