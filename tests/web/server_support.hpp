#pragma once
// Helpers shared by the HTTP server's unit tests: one connection over a StringTransport
// on a manual clock, and its output read back as the parser's events.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "tests/web/http_recorder.hpp"
#include "web/http_server.hpp"

namespace torsion::web::test {

// The parser's events for a response: "head 200 OK 1.1 keep [Server=torsion] ...", "body ...", "end".
using Events = std::vector<std::string>;

// Drops the Date field (it follows the wall clock) from server output.
inline std::string without_date(std::string s) {
  for (std::size_t at; (at = s.find("Date: ")) != std::string::npos;)
    s.erase(at, s.find("\r\n", at) + 2 - at);
  return s;
}

// The responses in `out`, as the parser's events (Date dropped).
inline std::vector<std::string> responses(const std::string& out, bool head = false) {
  const std::string plain = without_date(out);
  return parse_chunks(HttpParser::Kind::response, {plain}, {}, false, head).events;
}

// An HTTP connection over a StringTransport, on a manual clock.
struct Conn {
  torsion::testing::ManualClock clock;
  HttpFactory factory;
  torsion::testing::StringTransport t;
  std::unique_ptr<Protocol> p;
  explicit Conn(Handler h, HttpServerOptions o = {})
      : factory(clock, std::move(h), std::move(o)), p(factory.build_protocol(Address())) {
    t.connect(*p);
  }
  ~Conn() {
    if (!t.lost()) t.disconnect();
  }
  std::string send(std::string_view data) {
    t.receive(data);
    clock.advance(0);
    return without_date(t.take());
  }
};

}  // namespace torsion::web::test
