// Conditional requests (RFC 9110 section 13) on file responses: the HTTP-date both ways
// and entity-tag lists on every form and malformed input; the validators a file carries
// and the server's 304, 200 and 206 answers through a StringTransport (the request cut at
// every point); and real clients over TCP: curl -z (a date and a local file's mtime),
// curl --etag-save / --etag-compare, and python3's http.client on one connection.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "framework/file_sender.hpp"
#include "framework/reactor.hpp"
#include "tests/web/file_site.hpp"
#include "tests/web/peers.hpp"
#include "tests/web/server_support.hpp"
#include "transports/tcp.hpp"
#include "web/detail/conditional.hpp"
#include "web/router.hpp"
#include "web/static_files.hpp"

using namespace torsion;
using namespace torsion::web;
using namespace torsion::web::test;  // Conn, responses, Child, have, python
namespace cond = torsion::web::detail;
using cond::TagMatch;

namespace {

// kFileMtime, as an HTTP-date and in the ETag.
const std::string modified = "Tue, 14 Nov 2023 22:13:20 GMT";
const std::string etag = "\"6553f100-a\"";  // nginx's form: mtime and size in hex

// A temporary directory with digits.txt ("0123456789"), its mtime kFileMtime.
struct Root : FileRoot {
  Root() : FileRoot("cond") { write("digits.txt", "0123456789"); }
};

std::string date_of(std::int64_t seconds) {
  char text[32];
  return std::string(text, cond::format_http_date(seconds, text));
}

std::string parsed(std::string_view field) {
  const auto t = cond::parse_http_date(field);
  return t ? std::to_string(*t) : "none";
}

// Feeds `request` to `c` in two pieces cut at `cut`, drives the FileSender to the end;
// returns the raw output (Date kept).
std::string exchange(Conn& c, const std::string& request, std::size_t cut) {
  std::string out;
  c.t.receive(request.substr(0, cut));
  c.clock.advance(0);
  c.t.receive(request.substr(cut));
  c.clock.advance(0);
  return drain_files(c);
}

std::vector<std::string> get(Conn& c, const std::string& path, const std::string& fields,
                             const std::string& method = "GET") {
  const std::string request = method + " " + path + " HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n";
  return responses(exchange(c, request, request.size()), method == "HEAD");
}

}  // namespace

TEST_CASE("http_conditional: HTTP-dates and entity-tag lists, well formed and not") {
  CHECK(date_of(kFileMtime) == modified);
  CHECK(date_of(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(date_of(253402300799) == "Fri, 31 Dec 9999 23:59:59 GMT");
  CHECK(date_of(253402300800).empty());  // no 5-digit year
  CHECK(date_of(-1).empty());
  CHECK(parsed(modified) == std::to_string(kFileMtime));
  CHECK(parsed(" \t" + modified + "\t ") == std::to_string(kFileMtime));
  CHECK(parsed("Sun, 06 Nov 1994 08:49:37 GMT") == "784111777");  // RFC 9110's example
  CHECK(parsed("Thu, 29 Feb 2024 00:00:00 GMT") == "1709164800");
  CHECK(parsed("Sat, 01 Jan 1000 00:00:00 GMT") == "-30610224000");
  for (std::int64_t t : {std::int64_t{0}, std::int64_t{951782400}, std::int64_t{4107542399},
                         std::int64_t{253402300799}})
    CHECK(parsed(date_of(t)) == std::to_string(t));
  for (const char* bad : {"",
                          "Sunday, 06-Nov-94 08:49:37 GMT",  // RFC 850: obsolete, not taken
                          "Sun Nov  6 08:49:37 1994",        // asctime: the same
                          "Sun, 06 Nov 1994 08:49:37 UTC",
                          "sun, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 06 nov 1994 08:49:37 GMT",
                          "Xyz, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 6 Nov 1994 08:49:37 GMT",
                          "Sun,  06 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 8:49:37 GMT",
                          "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 06 Nov 1994 08:60:00 GMT",
                          "Sun, 06 Nov 1994 08:49:61 GMT",
                          "Sun, 31 Nov 1994 08:49:37 GMT",
                          "Sun, 29 Feb 2023 08:49:37 GMT",
                          "Sun, 29 Feb 1900 08:49:37 GMT",
                          "Sun, 00 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 GMTx",
                          "Sun, 06 Nov +994 08:49:37 GMT"}) {
    INFO(bad);
    CHECK(parsed(bad) == "none");
  }
  CHECK(parsed(std::string(40, ' ') + modified) == "none");  // over 64 bytes

  using cond::match_tag_list;
  CHECK(match_tag_list("\"a\"", "\"a\"", true) == TagMatch::yes);
  CHECK(match_tag_list("\"b\", \"a\"", "\"a\"", true) == TagMatch::yes);
  CHECK(match_tag_list(" ,\"b\" ,\t,W/\"a\", ", "\"a\"", true) == TagMatch::yes);
  CHECK(match_tag_list("W/\"a\"", "\"a\"", false) == TagMatch::no);  // strong comparison
  CHECK(match_tag_list("\"a\"", "W/\"a\"", false) == TagMatch::no);
  CHECK(match_tag_list("\"a\"", "W/\"a\"", true) == TagMatch::yes);
  CHECK(match_tag_list("\"a,b\"", "\"a,b\"", false) == TagMatch::yes);  // a comma inside
  CHECK(match_tag_list("\"A\"", "\"a\"", true) == TagMatch::no);       // case counts
  CHECK(match_tag_list("\"\"", "\"\"", true) == TagMatch::yes);
  CHECK(match_tag_list("*", "\"a\"", true) == TagMatch::yes);
  CHECK(match_tag_list(" * ", "\"a\"", true) == TagMatch::yes);
  CHECK(match_tag_list("\"b\"", "\"a\"", true) == TagMatch::no);
  for (const char* bad : {"", " ", ",", "a", "\"a", "a\"", "\"a\" \"b\"", "\"a\"x", "w/\"a\"",
                          "W/ \"a\"", "*, \"a\"", "\"a\", *", "\"a b\"", "\"a\x7f\"",
                          "\"a\";q=1"}) {
    INFO(bad);
    CHECK(match_tag_list(bad, "\"a\"", true) == TagMatch::malformed);
  }
  CHECK(match_tag_list("\"a\"", "a", true) == TagMatch::malformed);  // not an entity-tag
  std::string many;
  while (many.size() <= cond::max_tag_list) many += "\"x\", ";
  CHECK(match_tag_list(many + "\"a\"", "\"a\"", true) == TagMatch::malformed);
}

TEST_CASE("http_conditional: 304 for If-None-Match, the request cut at every point") {
  Root root;
  Router router;
  router.get("/*path", static_files(root.dir));
  const std::string request =
      "GET /digits.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\", " + etag + "\r\n\r\n";
  for (std::size_t cut = 0; cut <= request.size(); ++cut) {
    CAPTURE(cut);
    Conn c(router);
    const std::string out = exchange(c, request, cut);
    CHECK(out.find("\r\nDate: ") != std::string::npos);  // Date stays (RFC 9110 15.4.5)
    const auto r = responses(out);
    REQUIRE(r.size() == 2);
    CHECK(r[0] == "head 304 Not Modified 1.1 keep [Server=torsion] [ETag=" + etag +
                      "] [Last-Modified=" + modified + "]");
    CHECK(r[1] == "end");
    CHECK_FALSE(c.t.disconnecting());
  }
}

TEST_CASE("http_conditional: static files: validators, If-None-Match, If-Modified-Since, If-Range") {
  Root root;
  Router router;
  router.get("/*path", static_files(root.dir));
  Conn c(router);  // one connection kept alive through every case
  const auto whole = get(c, "/digits.txt", "");
  REQUIRE(whole.size() == 3);
  CHECK(whole[0] ==
        "head 200 OK 1.1 keep [Server=torsion] [Content-Length=10] "
        "[Content-Type=text/plain; charset=utf-8] [ETag=" + etag + "] [Last-Modified=" +
            modified + "] [Accept-Ranges=bytes]");
  const std::string not_modified = "head 304 Not Modified 1.1 keep [Server=torsion] [ETag=" +
                                   etag + "] [Last-Modified=" + modified + "]";
  // 304: a matching tag (weak comparison), "*", If-Modified-Since at or after the mtime.
  const std::string earlier = date_of(kFileMtime - 1), later = date_of(kFileMtime + 3600);
  for (const std::string& fields : std::vector<std::string>{
       "If-None-Match: " + etag + "\r\n", "If-None-Match: W/" + etag + "\r\n",
        "If-None-Match: *\r\n", "If-None-Match: \"a\"\r\nIf-None-Match: " + etag + "\r\n",
        "If-Modified-Since: " + modified + "\r\n", "If-Modified-Since: " + later + "\r\n",
        // If-None-Match decides, If-Modified-Since is not looked at (RFC 9110 13.2.2).
        "If-None-Match: " + etag + "\r\nIf-Modified-Since: " + earlier + "\r\n"}) {
    INFO(fields);
    const auto r = get(c, "/digits.txt", fields);
    REQUIRE(r.size() == 2);
    CHECK(r[0] == not_modified);
    const auto head = get(c, "/digits.txt", fields, "HEAD");
    REQUIRE(head.size() == 2);
    CHECK(head[0] == not_modified);
  }
  // 200 with the whole file: no match, an earlier date, a date in the future, malformed
  // or over-long fields (ignored), two If-Modified-Since, a malformed If-None-Match (which
  // keeps If-Modified-Since from being looked at).
  const std::string future = date_of(static_cast<std::int64_t>(std::time(nullptr)) + 86400);
  std::string long_list;
  while (long_list.size() <= cond::max_tag_list) long_list += "\"x\", ";
  for (const std::string& fields : std::vector<std::string>{
       std::string("If-None-Match: \"6553f100-b\"\r\n"), "If-None-Match: \"a\", \"b\"\r\n",
        "If-Modified-Since: " + earlier + "\r\n", "If-Modified-Since: " + future + "\r\n",
        std::string("If-Modified-Since: yesterday\r\n"),
        "If-Modified-Since: Tuesday, 14-Nov-23 22:13:20 GMT\r\n",
        "If-Modified-Since: " + modified + "\r\nIf-Modified-Since: " + modified + "\r\n",
        "If-None-Match: " + etag + " x\r\nIf-Modified-Since: " + modified + "\r\n",
        "If-None-Match: " + long_list + etag + "\r\n"}) {
    INFO(fields);
    const auto r = get(c, "/digits.txt", fields);
    REQUIRE(r.size() == 3);
    CHECK(r[0].rfind("head 200 OK ", 0) == 0);
    CHECK(r[1] == "body 0123456789");
  }
  // If-Range: a date equal to Last-Modified (a strong validator: well over a second old)
  // or the strong ETag gives the range; another date or tag, or a weak tag, the whole file.
  const std::string range = "Range: bytes=2-4\r\n";
  CHECK(get(c, "/digits.txt", range + "If-Range: " + modified + "\r\n").at(1) == "body 234");
  CHECK(get(c, "/digits.txt", range + "If-Range: " + etag + "\r\n").at(1) == "body 234");
  for (const std::string& if_range : std::vector<std::string>{
       earlier, later, std::string("W/") + etag, std::string("\"6553f100-b\""),
        etag + ", " + etag, std::string("Tue, 14 Nov 2023 22:13:20 UTC")}) {
    INFO(if_range);
    CHECK(get(c, "/digits.txt", range + "If-Range: " + if_range + "\r\n").at(1) ==
          "body 0123456789");
  }
  // A 304 only for GET and HEAD; a condition that holds on a range request wins over it.
  CHECK(get(c, "/digits.txt", "If-None-Match: " + etag + "\r\n", "POST").at(0).find("head 405") ==
        0);
  CHECK(get(c, "/digits.txt", range + "If-None-Match: " + etag + "\r\n").at(0) == not_modified);
  CHECK_FALSE(c.t.disconnecting());
}

TEST_CASE("http_conditional: set_file: the handler's validators win, a part has none") {
  Root root;
  const std::string digits = root.dir + "/digits.txt";
  Router router;
  router.get("/tagged", [&](Request&, Response& res) {
    res.set_header("ETag", "\"v7\"").set_file(digits).set_header("Cache-Control", "max-age=60");
    res.end();
  });
  router.get("/dated", [&](Request&, Response& res) {
    res.set_file(digits).set_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT");
    res.end();
  });
  router.get("/part", [&](Request&, Response& res) {  // 4 bytes of a 10-byte file
    std::error_code ec;
    auto source = open_regular_file(digits, ec);
    REQUIRE(source);
    res.set_file(std::move(source), 4);
    res.end();
  });
  router.get("/text", [](Request&, Response& res) {
    res.set_header("ETag", "\"t\"");
    res.end("0123456789");
  });
  router.post("/upload", [&](Request&, Response& res) {
    res.set_file(digits);
    res.end();
  });
  Conn c(router);
  const auto tagged = get(c, "/tagged", "If-None-Match: \"v7\"\r\n");
  REQUIRE(tagged.size() == 2);
  // Cache-Control stays on a 304 (RFC 9110 15.4.5); the handler's ETag replaced nginx's.
  CHECK(tagged[0] == "head 304 Not Modified 1.1 keep [Server=torsion] [ETag=\"v7\"] "
                     "[Cache-Control=max-age=60] [Last-Modified=" + modified + "]");
  CHECK(get(c, "/tagged", "If-None-Match: " + etag + "\r\n").at(1) == "body 0123456789");
  const auto dated = get(c, "/dated", "If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n");
  CHECK(dated.at(0) == "head 304 Not Modified 1.1 keep [Server=torsion] "
                       "[Last-Modified=Mon, 01 Jan 2024 00:00:00 GMT] [ETag=" + etag + "]");
  const auto part = get(c, "/part", "If-None-Match: *\r\n");
  REQUIRE(part.size() == 3);
  CHECK(part[0] == "head 200 OK 1.1 keep [Server=torsion] [Content-Length=4] "
                   "[Accept-Ranges=bytes]");
  CHECK(part[1] == "body 0123");
  const auto text = get(c, "/text", "If-None-Match: \"t\"\r\n");  // not a file: left alone
  CHECK(text.at(0).rfind("head 200 OK ", 0) == 0);
  CHECK(text.at(1) == "body 0123456789");
  const auto post = get(c, "/upload", "If-None-Match: " + etag + "\r\n", "POST");
  CHECK(post.at(0).rfind("head 200 OK ", 0) == 0);
  CHECK(post.at(0).find("[ETag=" + etag + "]") != std::string::npos);
  CHECK(post.at(1) == "body 0123456789");
}

using Site = FileSite;

TEST_CASE("http_conditional: curl -z (a date, a file's mtime) and --etag-save/--etag-compare") {
  if (!have("curl")) {
    MESSAGE("skipped: curl is not installed");
    return;
  }
  Root root;
  Site s(root.dir);
  const std::string out = root.dir + "/out.txt", tags = root.dir + "/etag.txt";
  const auto curl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "-o", out, "-w", "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(s.url("/digits.txt"));
    Child c = run_child(s.reactor, argv);
    INFO(c.err);
    REQUIRE(c.status->success());
    return c.out;
  };
  // -z DATE sends If-Modified-Since; -z FILE sends the local file's mtime.
  CHECK(curl({"-z", modified}) == "304");
  CHECK(curl({"-z", date_of(kFileMtime - 60)}) == "200");
  CHECK(root.read("out.txt") == "0123456789");
  root.write("out.txt", "stale");  // the same mtime as digits.txt
  CHECK(curl({"-z", out}) == "304");
  // --etag-save keeps the ETag of a 200; --etag-compare sends it back as If-None-Match.
  CHECK(curl({"--etag-save", tags}) == "200");
  CHECK(root.read("etag.txt").find(etag) == 0);
  CHECK(curl({"--etag-compare", tags}) == "304");
  // The headers of a 304, as curl reads them.
  Child head = run_child(s.reactor, {"curl", "-sS", "-D", "-", "-o", "/dev/null", "-H",
                                     "If-None-Match: " + etag, s.url("/digits.txt")});
  REQUIRE(head.status->success());
  CHECK(head.out.find("HTTP/1.1 304 Not Modified\r\n") == 0);
  CHECK(head.out.find("ETag: " + etag + "\r\n") != std::string::npos);
  CHECK(head.out.find("Last-Modified: " + modified + "\r\n") != std::string::npos);
  CHECK(head.out.find("Date: ") != std::string::npos);
  CHECK(head.out.find("Content-Length") == std::string::npos);
  CHECK(head.out.find("Content-Type") == std::string::npos);
}

TEST_CASE("http_conditional: python3 http.client: 304s and a 200 on one connection") {
  if (!have("python3")) {
    MESSAGE("skipped: python3 is not installed");
    return;
  }
  Root root;
  Site s(root.dir);
  const std::string script = R"(
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
c.request('GET', '/digits.txt')
r = c.getresponse()
assert r.read() == b'0123456789'
tag, date = r.getheader('ETag'), r.getheader('Last-Modified')
sock = c.sock
out = [tag, date]
for method, fields in [('GET', {'If-None-Match': tag}), ('HEAD', {'If-None-Match': tag}),
                       ('GET', {'If-Modified-Since': date}),
                       ('GET', {'If-None-Match': '"other"'}),
                       ('GET', {'Range': 'bytes=8-', 'If-Range': date})]:
    c.request(method, '/digits.txt', headers=fields)
    r = c.getresponse()
    out.append('%d %r %s' % (r.status, r.read(), r.getheader('Content-Length')))
assert c.sock is sock, 'the connection was not reused'
print('|'.join(out))
)";
  const Child c = run_child(s.reactor, {python(), "-c", script, std::to_string(s.port->port())});
  INFO(c.err);
  CHECK(c.status->success());
  CHECK(c.out == etag + "|" + modified +
                     "|304 b'' None|304 b'' None|304 b'' None|200 b'0123456789' 10|"
                     "206 b'89' 2\n");
}
