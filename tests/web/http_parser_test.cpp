#include "web/http_parser.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/protocols/splitting.hpp"
#include "tests/web/http_recorder.hpp"

using namespace torsion::web;

namespace {

using torsion::web::test::parse_chunks;
using Result = torsion::web::test::ParseResult;

// The result of parsing `input` whole, after checking that every cut of it gives the same.
Result parse_every_cut(HttpParser::Kind kind, std::string_view input, const HttpLimits& limits = {},
                       bool eof = false, bool head_response = false) {
  const Result whole = parse_chunks(kind, {input}, limits, eof, head_response);
  for (const auto& cut : torsion::test::every_cut(input)) {
    INFO("input cut: " << cut.name);
    const Result r = parse_chunks(kind, cut.chunks, limits, eof, head_response);
    REQUIRE(r.events == whole.events);
    REQUIRE(r.status == whole.status);
    REQUIRE(r.eof_clean == whole.eof_clean);
  }
  return whole;
}

Result request(std::string_view input, const HttpLimits& limits = {}) {
  return parse_every_cut(HttpParser::Kind::request, input, limits);
}

int refusal(std::string_view input, const HttpLimits& limits = {}) {
  return request(input, limits).status;
}

using Events = std::vector<std::string>;

}  // namespace

TEST_CASE("http_parser: a GET with headers, then a pipelined one") {
  const Result r = request(
      "GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  */* \r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  CHECK(r.status == 0);
  CHECK(r.events == Events{"head GET /a?x=1 1.1 keep [Host=example.com] [Accept=*/*]", "end",
                           "head GET /b 1.1 close [Host=h] [Connection=close]", "end"});
}

TEST_CASE("http_parser: a Content-Length body is handed over whole however it is cut") {
  const Result r = request("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
  CHECK(r.events == Events{"head POST /p 1.1 keep [Host=h] [Content-Length=11]",
                           "body hello world", "end"});
}

TEST_CASE("http_parser: chunked body with extensions and trailers") {
  const Result r = request(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6 ; name=\"v\"\r\n world\r\n0\r\nChecksum: abc\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(r.status == 0);
  CHECK(r.events == Events{"head POST /c 1.1 keep [Host=h] [Transfer-Encoding=chunked]",
                           "body hello world", "end [Checksum=abc]", "head GET / 1.1 keep [Host=h]",
                           "end"});
}

TEST_CASE("http_parser: HTTP/1.0 closes unless keep-alive is asked for; no Host needed") {
  CHECK(request("GET / HTTP/1.0\r\n\r\n").events == Events{"head GET / 1.0 close", "end"});
  CHECK(request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").events ==
        Events{"head GET / 1.0 keep [Connection=Keep-Alive]", "end"});
}

TEST_CASE("http_parser: Expect: 100-continue and Upgrade are reported") {
  CHECK(request("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
            .events.front() == "head PUT / 1.1 keep continue [Host=h] [Expect=100-continue] "
                               "[Content-Length=1]");
  CHECK(request("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .events.front() ==
        "head GET / 1.1 keep upgrade [Host=h] [Connection=Upgrade] [Upgrade=websocket]");
}

TEST_CASE("http_parser: empty lines before a request line are skipped") {
  CHECK(request("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").events ==
        Events{"head GET / 1.1 keep [Host=h]", "end"});
}

TEST_CASE("http_parser: malformed requests are refused with 400") {
  const char* cases[] = {
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",              // two spaces
      "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",              // trailing space
      "GET /\r\nHost: h\r\n\r\n",                        // no version
      "G@T / HTTP/1.1\r\nHost: h\r\n\r\n",               // method not a token
      "GET / HTTP/1.x\r\nHost: h\r\n\r\n",               // malformed version
      "GET / HTTP/11\r\nHost: h\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",           // control in target
      "GET / HTTP/1.1\r\n\r\n",                          // missing Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",    // duplicate Host
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",              // space before colon
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", // obs-fold
      "GET / HTTP/1.1\r\nHost: h\r\nX a\r\n\r\n",        // no colon
      "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",        // empty name
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",   // DEL in a value
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",    // bare CR
      "GET / HTTP/1.1\nHost: h\r\n\r\n",                 // bare LF
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\nxx",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x01\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : v\r\n\r\n",
  };
  for (const char* input : cases) {
    INFO("input: " << input);
    CHECK(refusal(input) == 400);
  }
}

TEST_CASE("http_parser: identical repeated Content-Length values are one length") {
  CHECK(request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab")
            .events.at(1) == "body ab");
}

TEST_CASE("http_parser: versions other than 1.0 and 1.1 get 505, codings other than chunked 501") {
  CHECK(refusal("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505);
  CHECK(refusal("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 505);
  CHECK(refusal("GET / HTTP/0.9\r\n\r\n") == 505);
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n") == 501);
}

TEST_CASE("http_parser: every limit has its status") {
  HttpLimits small;
  small.max_start_line = 30;
  small.max_field_line = 20;
  small.max_head = 80;
  small.max_fields = 3;
  small.max_body = 10;
  small.max_chunk_line = 8;
  // 414: the request line (a partial line past the limit is refused before it ends).
  CHECK(refusal("GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", small) == 414);
  CHECK(refusal("GET /" + std::string(40, 'a'), small) == 414);
  CHECK(refusal("GET /" + std::string(12, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", small) == 0);
  // 431: one field line, the head, the field count, the trailers.
  CHECK(refusal("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(20, 'v') + "\r\n\r\n", small) == 431);
  CHECK(refusal("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small) == 431);
  CHECK(refusal("GET / HTTP/1.1\r\nHost: h\r\nA: 12345678901\r\nB: 12345678901\r\n"
                "C: 12345678901\r\n\r\n", small) == 431);
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
                "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", small) == 431);
  small.max_field_line = 30;
  small.max_head = 100;
  // 413: Content-Length (before any body byte) and chunked bodies.
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", small) == 413);
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", small) == 0);
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                "6\r\nabcdef\r\n5\r\n", small) == 413);
  // 400: a chunk-size line past its limit.
  CHECK(refusal("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                "1;abcdefgh\r\n", small) == 400);
}

TEST_CASE("http_parser: a request cut off by EOF is an error, between messages it is clean") {
  CHECK(parse_every_cut(HttpParser::Kind::request, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", {}, true)
            .eof_clean);
  const Result r =
      parse_every_cut(HttpParser::Kind::request, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab",
                      {}, true);
  CHECK_FALSE(r.eof_clean);
}

TEST_CASE("http_parser: responses: length, chunked, close-delimited, no body") {
  using K = HttpParser::Kind;
  CHECK(parse_every_cut(K::response, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").events ==
        Events{"head 200 OK 1.1 keep [Content-Length=2]", "body hi", "end"});
  CHECK(parse_every_cut(K::response,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
            .events == Events{"head 200 OK 1.1 keep [Transfer-Encoding=chunked]", "body hi", "end"});
  const Result until_close = parse_every_cut(K::response, "HTTP/1.0 200 OK\r\n\r\nall of it", {}, true);
  CHECK(until_close.events == Events{"head 200 OK 1.0 close", "body all of it", "end"});
  CHECK(until_close.eof_clean);
  CHECK(parse_every_cut(K::response, "HTTP/1.1 204 No Content\r\n\r\n").events ==
        Events{"head 204 No Content 1.1 keep", "end"});
  CHECK(parse_every_cut(K::response, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
            .events == Events{"head 100 Continue 1.1 keep", "end", "head 200  1.1 keep [Content-Length=0]", "end"});
  // A response to HEAD has no body whatever Content-Length says.
  CHECK(parse_every_cut(K::response, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {}, false, true)
            .events == Events{"head 200 OK 1.1 keep [Content-Length=5]", "end"});
}

TEST_CASE("http_parser: malformed responses") {
  using K = HttpParser::Kind;
  CHECK(parse_every_cut(K::response, "HTTP/1.1 20 OK\r\n\r\n").status == 400);
  CHECK(parse_every_cut(K::response, "HTTP/1.1 200OK\r\n\r\n").status == 400);
  CHECK(parse_every_cut(K::response, "HTTP/2 200 OK\r\n\r\n").status == 400);
  CHECK(parse_every_cut(K::response, "HTTP/3.0 200 OK\r\n\r\n").status == 505);
  CHECK(parse_every_cut(K::response, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n")
            .status == 400);
  HttpLimits small;
  small.max_body = 4;
  CHECK(parse_every_cut(K::response, "HTTP/1.1 200 OK\r\n\r\n12345", small).status == 413);
}

TEST_CASE("chunked_decoder: decodes alone and stops at the end of the trailers") {
  struct Sink : ChunkedDecoder::Sink {
    std::string body;
    void chunk_data(std::string_view d) override { body.append(d); }
  };
  const std::string input = "3\r\nabc\r\n0\r\nX: y\r\n\r\nNEXT";
  for (const auto& cut : torsion::test::every_cut(input)) {
    INFO("input cut: " << cut.name);
    ChunkedDecoder decoder;
    Sink sink;
    std::string rest;
    for (std::string_view chunk : cut.chunks) {
      const std::size_t used = decoder.feed(chunk, sink);
      rest.append(chunk.substr(used));
    }
    CHECK(decoder.done());
    CHECK(sink.body == "abc");
    CHECK(rest == "NEXT");
    CHECK(decoder.trailers().get("x") == "y");
  }
}
