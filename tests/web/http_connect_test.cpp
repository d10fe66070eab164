// CONNECT left to the handler: a 2xx answer and switch_protocols make the connection a
// tunnel (no framing fields in the head, every later byte to the new protocol); a 2xx
// ended without switching closes; other statuses answer as usual. Through a
// StringTransport.

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "tests/web/server_support.hpp"
#include "web/http_server.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn

namespace {

struct Echo : Protocol {
  void data_received(std::string_view d) override { transport().write(d); }
};

// CONNECT to "allowed:443" is tunnelled to an echo; anything else is refused.
void connect_handler(Request& req, Response& res) {
  if (req.method() != "CONNECT") return res.end(Response(405, "CONNECT only\n"));
  if (req.target() != "allowed:443") return res.end(Response(403, "not there\n"));
  res.set_status(200, "Connection Established");
  res.switch_protocols(std::make_unique<Echo>());
}

}  // namespace

TEST_CASE("http_connect: a 2xx and switch_protocols make a tunnel; the bytes after the head go through it") {
  Conn c(connect_handler);
  const std::string out = c.send("CONNECT allowed:443 HTTP/1.1\r\nHost: allowed:443\r\n\r\nclient hello");
  CHECK(out == "HTTP/1.1 200 Connection Established\r\nServer: torsion\r\n\r\nclient hello");
  CHECK(c.send("GET / HTTP/1.1\r\n\r\n") == "GET / HTTP/1.1\r\n\r\n");  // no longer HTTP
  CHECK_FALSE(c.t.disconnecting());
}

TEST_CASE("http_connect: refused CONNECTs are answered as usual; a 2xx without a switch closes") {
  Conn refused(connect_handler);
  const std::string out = refused.send("CONNECT elsewhere:443 HTTP/1.1\r\nHost: elsewhere:443\r\n\r\n");
  CHECK(out.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
  CHECK(out.find("Content-Length: 10\r\n") != std::string::npos);
  CHECK_FALSE(refused.t.disconnecting());

  Conn ended([](Request&, Response& res) { res.end(Response(200, "ignored")); });
  const std::string plain = ended.send("CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n");
  CHECK(plain == "HTTP/1.1 200 OK\r\nServer: torsion\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
  CHECK(ended.t.disconnecting());

  Conn not_connect([](Request&, Response& res) {
    res.set_status(200);
    CHECK_THROWS_AS(res.switch_protocols(std::make_unique<Echo>()), std::logic_error);
    res.end("fine");
  });
  CHECK(responses(not_connect.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).at(1) == "body fine");
}
