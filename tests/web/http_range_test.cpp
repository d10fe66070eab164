// Range requests (RFC 9110 section 14): resolve_byte_range on every form and malformed
// input; the server's 206, 416 and 200 answers for file responses through a
// StringTransport (the request cut at every point); and real clients over TCP, where the
// range goes with sendfile(2): curl -r (a range, a suffix, an unsatisfiable one, a resumed
// download with -C -) and python3's http.client, checking the bytes exactly.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "framework/file_sender.hpp"
#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"
#include "tests/web/file_site.hpp"
#include "tests/web/peers.hpp"
#include "tests/web/server_support.hpp"
#include "transports/process.hpp"
#include "transports/tcp.hpp"
#include "web/byte_range.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn, responses, Child, have, python

namespace {

using Kind = ByteRange::Kind;

// "partial 2-4", "whole" or "unsatisfiable": what resolve_byte_range says.
std::string resolve(std::string_view field, std::uint64_t size, RangeLimits limits = {}) {
  const ByteRange r = resolve_byte_range(field, size, limits);
  switch (r.kind) {
    case Kind::partial:
      return "partial " + std::to_string(r.first) + "-" + std::to_string(r.last);
    case Kind::unsatisfiable:
      return "unsatisfiable";
    case Kind::whole:
      break;
  }
  return "whole";
}

// A temporary directory with digits.txt ("0123456789"), big.bin (3 MiB + 5 of a
// pattern, past the server's 1 MiB sendfile region) and empty.txt.
struct Root : FileRoot {
  std::string big;
  Root() : FileRoot("range") {
    write("digits.txt", "0123456789");
    big.resize(3 * 1024 * 1024 + 5);
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    write("big.bin", big);
    write("empty.txt", "");
  }
};

// Feeds `request` to `c` (in two pieces, cut at `cut`) and drives the FileSender to the
// end; returns the responses as the parser's events.
std::vector<std::string> exchange(Conn& c, const std::string& request, std::size_t cut,
                                  bool head = false) {
  std::string out = c.send(request.substr(0, cut));
  out += c.send(request.substr(cut));
  return responses(out + without_date(drain_files(c)), head);
}

std::vector<std::string> get(Conn& c, const std::string& path, const std::string& fields,
                             std::string method = "GET") {
  const std::string request = method + " " + path + " HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n";
  return exchange(c, request, request.size(), method == "HEAD");
}

}  // namespace

TEST_CASE("http_range: resolve_byte_range on the three forms, lists and malformed fields") {
  // int-range, open range, suffix; a last-pos past the end is cut to it.
  CHECK(resolve("bytes=2-4", 10) == "partial 2-4");
  CHECK(resolve("bytes=0-0", 10) == "partial 0-0");
  CHECK(resolve("bytes=7-", 10) == "partial 7-9");
  CHECK(resolve("bytes=5-99999999999999999999999", 10) == "partial 5-9");
  CHECK(resolve("bytes=-3", 10) == "partial 7-9");
  CHECK(resolve("bytes=-30", 10) == "partial 0-9");
  CHECK(resolve("bytes=-99999999999999999999999", 10) == "partial 0-9");
  CHECK(resolve("BYTES=002-004", 10) == "partial 2-4");
  CHECK(resolve(" \tbytes=2-4\t ", 10) == "partial 2-4");
  // Unsatisfiable: first-pos at or past the end, a zero suffix; dropped among others.
  CHECK(resolve("bytes=10-", 10) == "unsatisfiable");
  CHECK(resolve("bytes=10-20", 10) == "unsatisfiable");
  CHECK(resolve("bytes=99999999999999999999999-", 10) == "unsatisfiable");
  CHECK(resolve("bytes=-0", 10) == "unsatisfiable");
  CHECK(resolve("bytes=10-20, -0", 10) == "unsatisfiable");
  CHECK(resolve("bytes=10-20,2-3", 10) == "partial 2-3");
  CHECK(resolve("bytes=0-", 0) == "unsatisfiable");
  CHECK(resolve("bytes=-5", 0) == "whole");  // satisfiable, but no byte to send
  // Lists: OWS around commas, empty elements; overlapping or touching ranges coalesce,
  // ranges apart give the whole representation.
  CHECK(resolve("bytes=0-1, 2-3", 10) == "partial 0-3");
  CHECK(resolve("bytes=4-6 ,\t0-5", 10) == "partial 0-6");
  CHECK(resolve("bytes=,,1-2,,", 10) == "partial 1-2");
  CHECK(resolve("bytes=0-1,-2", 10) == "whole");
  CHECK(resolve("bytes=0-1,3-4", 10) == "whole");
  CHECK(resolve("bytes=0-4,2-3,-5", 10) == "partial 0-9");
  // Malformed: the field is ignored.
  for (const char* bad : {"",
                          "bytes",
                          "bytes=",
                          "bytes=,",
                          "bytes= ",
                          "bytes =1-2",
                          "bytes= 1-2x",
                          "bytes=1 -2",
                          "bytes=1- 2",
                          "bytes=4-2",
                          "bytes=1-2-3",
                          "bytes=-",
                          "bytes=--1",
                          "bytes=a-b",
                          "bytes=1-2;",
                          "bytes=+1-2",
                          "bytes=0x1-2",
                          "bytes=1-2,x",
                          "items=1-2",
                          "bytes:1-2",
                          "bytesx=1-2",
                          "bytes=1-2,4-2",
                          "bytes=\x01"}) {
    INFO(bad);
    CHECK(resolve(bad, 10) == "whole");
  }
  // Limits: the field's length and the number of list elements looked at.
  const std::string many = "bytes=0-0,1-1,2-2,3-3";
  CHECK(resolve(many, 10, {.max_field = 1024, .max_ranges = 4}) == "partial 0-3");
  CHECK(resolve(many, 10, {.max_field = 1024, .max_ranges = 3}) == "whole");
  CHECK(resolve(many, 10, {.max_field = many.size(), .max_ranges = 16}) == "partial 0-3");
  CHECK(resolve(many, 10, {.max_field = many.size() - 1, .max_ranges = 16}) == "whole");
  CHECK(resolve("bytes=" + std::string(2000, '0') + "1-2", 10) == "whole");  // past 1024
  const ByteRange r = resolve_byte_range("bytes=3-5", 10);
  CHECK(r.length() == 3u);
}

TEST_CASE("http_range: 206, 416 and 200 for static files, the request cut at every point") {
  Root root;
  Router router;
  router.get("/*path", static_files(root.dir));
  const std::string request = "GET /digits.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=2-4\r\n\r\n";
  for (std::size_t cut = 0; cut <= request.size(); ++cut) {
    CAPTURE(cut);
    Conn c(router);
    const auto r = exchange(c, request, cut);
    REQUIRE(r.size() == 3);
    CHECK(r[0] ==
          "head 206 Partial Content 1.1 keep [Server=torsion] [Content-Length=3] "
          "[Content-Type=text/plain; charset=utf-8] [ETag=\"6553f100-a\"] "
          "[Last-Modified=Tue, 14 Nov 2023 22:13:20 GMT] [Accept-Ranges=bytes] "
          "[Content-Range=bytes 2-4/10]");
    CHECK(r[1] == "body 234");
    CHECK(r[2] == "end");
  }
  Conn c(router);  // one connection kept alive through every case
  const auto whole = get(c, "/digits.txt", "");
  REQUIRE(whole.size() == 3);
  CHECK(whole[0] ==
        "head 200 OK 1.1 keep [Server=torsion] [Content-Length=10] "
        "[Content-Type=text/plain; charset=utf-8] [ETag=\"6553f100-a\"] "
        "[Last-Modified=Tue, 14 Nov 2023 22:13:20 GMT] [Accept-Ranges=bytes]");
  CHECK(get(c, "/digits.txt", "Range: bytes=-3\r\n").at(1) == "body 789");
  CHECK(get(c, "/digits.txt", "Range: bytes=8-\r\n").at(1) == "body 89");
  CHECK(get(c, "/digits.txt", "Range: bytes=1-2,2-5\r\n").at(1) == "body 12345");  // coalesced
  // Unsatisfiable: 416 with the size, a short body, the connection kept.
  const auto none = get(c, "/digits.txt", "Range: bytes=10-\r\n");
  REQUIRE(none.size() == 3);
  CHECK(none[0] ==
        "head 416 Range Not Satisfiable 1.1 keep [Server=torsion] [Content-Length=22] "
        "[ETag=\"6553f100-a\"] [Last-Modified=Tue, 14 Nov 2023 22:13:20 GMT] "
        "[Accept-Ranges=bytes] [Content-Range=bytes */10] "
        "[Content-Type=text/plain; charset=utf-8]");
  CHECK(none[1] == "body range not satisfiable\n");
  CHECK(get(c, "/empty.txt", "Range: bytes=0-\r\n").at(0).find("[Content-Range=bytes */0]") !=
        std::string::npos);
  // The whole file: ranges apart, a malformed or foreign field, two Range fields, and
  // If-Range with a validator the file does not have (tests/web/http_conditional_test.cpp).
  for (const char* fields :
       {"Range: bytes=0-1,5-6\r\n", "Range: bytes=4-2\r\n", "Range: items=1-2\r\n",
        "Range: bytes=1-2\r\nRange: bytes=3-4\r\n", "Range: bytes=1-2\r\nIf-Range: \"x\"\r\n",
        "Range: bytes=1-2\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n"}) {
    INFO(fields);
    const auto r = get(c, "/digits.txt", fields);
    REQUIRE(r.size() == 3);
    CHECK(r[0].rfind("head 200 OK ", 0) == 0);
    CHECK(r[1] == "body 0123456789");
  }
  // HEAD gets the fields GET would get.
  const auto head = get(c, "/digits.txt", "Range: bytes=2-4\r\n", "HEAD");
  REQUIRE(head.size() == 2);
  CHECK(head[0].find("head 206 Partial Content ") == 0);
  CHECK(head[0].find("[Content-Length=3]") != std::string::npos);
  CHECK(head[0].find("[Content-Range=bytes 2-4/10]") != std::string::npos);
  CHECK(get(c, "/digits.txt", "", "HEAD").at(0).find("[Accept-Ranges=bytes]") != std::string::npos);
  CHECK_FALSE(c.t.disconnecting());
}

TEST_CASE("http_range: handlers: If-Range against an ETag, Accept-Ranges none, other bodies") {
  Root root;
  const std::string digits = root.dir + "/digits.txt";
  Router router;
  router.get("/tagged", [&](Request&, Response& res) {
    res.set_file(digits).set_header("ETag", "\"v1\"");
    res.end();
  });
  router.get("/weak", [&](Request&, Response& res) {
    res.set_file(digits).set_header("ETag", "W/\"v1\"");
    res.end();
  });
  router.get("/no-ranges", [&](Request&, Response& res) {
    res.set_file(digits).set_header("Accept-Ranges", "none");
    res.end();
  });
  router.get("/missing", [&](Request&, Response& res) {  // a file body, not a 200
    res.set_status(404).set_file(digits);
    res.end();
  });
  router.get("/text", [](Request&, Response& res) { res.end("0123456789"); });
  router.get("/source", [](Request&) {  // a source without a descriptor
    Response r(200);
    r.set_file(string_source("0123456789"), 10);
    return succeed(std::move(r));  // sent through Response::end(other)
  });
  router.get(
      "/offset",
      [&](Request&, Response& res) {  // a descriptor already read into: the body starts there
        std::error_code ec;
        auto source = open_regular_file(digits, ec);
        REQUIRE(source);
        char skip[4];
        REQUIRE(source->read(std::span<char>(skip, 4), ec) == 4);
        res.set_file(std::move(source), 6);
        res.end();
      });
  Conn c(router);
  const std::string range = "Range: bytes=1-3\r\n";
  CHECK(get(c, "/tagged", range + "If-Range: \"v1\"\r\n").at(1) == "body 123");
  CHECK(get(c, "/tagged", range + "If-Range: \"v2\"\r\n").at(1) == "body 0123456789");
  CHECK(get(c, "/tagged", range + "If-Range: W/\"v1\"\r\n").at(1) == "body 0123456789");
  CHECK(get(c, "/weak", range + "If-Range: W/\"v1\"\r\n").at(1) == "body 0123456789");
  CHECK(get(c, "/weak", range).at(1) == "body 123");  // no If-Range: nothing to compare
  const auto refused = get(c, "/no-ranges", range);
  CHECK(refused.at(0).find("[Accept-Ranges=none]") != std::string::npos);
  CHECK(refused.at(1) == "body 0123456789");
  CHECK(get(c, "/missing", range).at(0).find("head 404 ") == 0);
  CHECK(get(c, "/missing", range).at(1) == "body 0123456789");
  const auto text = get(c, "/text", range);
  CHECK(text.at(0).find("Accept-Ranges") == std::string::npos);
  CHECK(text.at(1) == "body 0123456789");
  CHECK(get(c, "/source", range).at(1) == "body 0123456789");
  const auto offset = get(c, "/offset", range);
  CHECK(offset.at(0).find("[Content-Range=bytes 1-3/6]") != std::string::npos);
  CHECK(offset.at(1) == "body 567");
  CHECK(get(c, "/offset", "Range: bytes=-2\r\n").at(1) == "body 89");
}

using Site = FileSite;

TEST_CASE("http_range: curl -r (a range, a suffix, past the end) and curl -C - resuming") {
  if (!have("curl")) {
    MESSAGE("skipped: curl is not installed");
    return;
  }
  Root root;
  Site s(root.dir);
  const std::string out = root.dir + "/out.bin";
  // A range across the 1 MiB sendfile regions of big.bin, with the status and headers.
  const Child c = run_child(
      s.reactor, {"curl", "-sS", "-D", "-", "-o", out, "-r", "1048000-2097999", s.url("/big.bin")});
  INFO(c.err);
  REQUIRE(c.status->success());
  CHECK(c.out.find("HTTP/1.1 206 Partial Content\r\n") == 0);
  CHECK(c.out.find("Content-Range: bytes 1048000-2097999/3145733\r\n") != std::string::npos);
  CHECK(c.out.find("Content-Length: 1050000\r\n") != std::string::npos);
  CHECK(root.read("out.bin") == root.big.substr(1048000, 1050000));
  // A suffix range, then one past the end: 416, its status kept by -w.
  const Child suffix = run_child(
      s.reactor, {"curl", "-sS", "-o", out, "-w", "%{http_code}", "-r", "-6", s.url("/big.bin")});
  CHECK(suffix.out == "206");
  CHECK(root.read("out.bin") == root.big.substr(root.big.size() - 6));
  const Child past = run_child(
      s.reactor, {"curl", "-sS", "-D", "-", "-o", out, "-r", "4000000-", s.url("/big.bin")});
  CHECK(past.out.find("HTTP/1.1 416 Range Not Satisfiable\r\n") == 0);
  CHECK(past.out.find("Content-Range: bytes */3145733\r\n") != std::string::npos);
  CHECK(root.read("out.bin") == "range not satisfiable\n");
  // Resuming: out.bin holds the first 1000000 bytes; curl -C - asks for the rest.
  root.write("out.bin", root.big.substr(0, 1000000));
  const Child resumed = run_child(
      s.reactor, {"curl", "-sS", "-C", "-", "-o", out, "-w", "%{http_code}", s.url("/big.bin")});
  INFO(resumed.err);
  CHECK(resumed.out == "206");
  CHECK(root.read("out.bin") == root.big);
}

TEST_CASE("http_range: python3 http.client gets exact bytes for ranges on one connection") {
  if (!have("python3")) {
    MESSAGE("skipped: python3 is not installed");
    return;
  }
  Root root;
  Site s(root.dir);
  // The same pattern as Root::big, built again in python, checked for each answer.
  const std::string script = R"(
import http.client, sys
size = 3 * 1024 * 1024 + 5
big = bytes(ord('a') + (i * 7 + i // 251) % 26 for i in range(size))
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
out = []
for rng, want in [('bytes=0-0', big[:1]), ('bytes=3145000-', big[3145000:]),
                  ('bytes=-1048577', big[-1048577:]), ('bytes=5-4', big),
                  ('bytes=9999999-', b'range not satisfiable\n'),
                  ('bytes=100-199,150-299', big[100:300])]:
    c.request('GET', '/big.bin', headers={'Range': rng})
    r = c.getresponse()
    body = r.read()
    assert body == want, (rng, len(body), len(want))
    out.append('%d %s %s' % (r.status, r.getheader('Content-Range'), r.getheader('Accept-Ranges')))
sock = c.sock
c.request('HEAD', '/big.bin', headers={'Range': 'bytes=10-19'})
r = c.getresponse()
r.read()
out.append('%d %s %s' % (r.status, r.getheader('Content-Range'), r.getheader('Content-Length')))
assert c.sock is sock, 'the connection was not reused'
print('|'.join(out))
)";
  const Child c = run_child(s.reactor, {python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out ==
        "206 bytes 0-0/3145733 bytes|206 bytes 3145000-3145732/3145733 bytes|"
        "206 bytes 2097156-3145732/3145733 bytes|200 None bytes|416 bytes */3145733 bytes|"
        "206 bytes 100-299/3145733 bytes|206 bytes 10-19/3145733 10\n");
}
