#include "web/websocket_frame.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/protocols/splitting.hpp"
#include "tests/web/websocket_recorder.hpp"

using namespace torsion::web;
using torsion::web::test::ws_frame;
using torsion::web::test::WsParse;

namespace {

// The result of parsing `input` whole, after checking that every cut gives the same,
// with the payload handed over (message_data) or appended to the sink's buffer.
WsParse parse_every_cut(std::string_view input, WsParserOptions options = {}) {
  const WsParse whole = torsion::web::test::ws_parse({input}, options);
  for (const auto& cut : torsion::test::every_cut(input)) {
    INFO("input cut: " << cut.name);
    REQUIRE(torsion::web::test::ws_parse(cut.chunks, options) == whole);
    REQUIRE(torsion::web::test::ws_parse(cut.chunks, options, true) == whole);
  }
  return whole;
}

WsParserOptions client_side() {
  WsParserOptions options;
  options.role = WsRole::client;
  return options;
}

std::string close_frame(std::string_view payload) { return ws_frame(WsOpcode::close, payload); }

}  // namespace

TEST_CASE("ws_frame: a masked text frame is one message, cut anywhere") {
  const WsParse r = parse_every_cut(ws_frame(WsOpcode::text, "hello"));
  CHECK(r.events == std::vector<std::string>{"text:hello"});
  CHECK(r.error == 0);
}

TEST_CASE("ws_frame: fragments with a ping between them, a character split across them") {
  const std::string input = ws_frame(WsOpcode::text, "caf\xc3", false) +
                            ws_frame(WsOpcode::ping, "p") +
                            ws_frame(WsOpcode::continuation, "\xa9!", false) +
                            ws_frame(WsOpcode::continuation, "", true) +
                            ws_frame(WsOpcode::binary, std::string("\0\1", 2));
  const WsParse r = parse_every_cut(input);
  CHECK(r.events == std::vector<std::string>{"ping:p", "text:caf\xc3\xa9!", std::string("binary:\0\1", 9)});
  CHECK(r.error == 0);
}

TEST_CASE("ws_frame: 16-bit and 64-bit lengths") {
  const std::string medium(300, 'm');
  const std::string large(70000, 'L');
  // Not every cut of 70 KB: whole, and a few.
  const std::string input = ws_frame(WsOpcode::binary, medium) + ws_frame(WsOpcode::binary, large);
  const WsParse whole = torsion::web::test::ws_parse({input}, {});
  REQUIRE(whole.events.size() == 2);
  CHECK(whole.events[0] == "binary:" + medium);
  CHECK(whole.events[1] == "binary:" + large);
  for (std::size_t step : {1u, 3u, 7u, 1000u}) {
    std::vector<std::string_view> chunks;
    for (std::size_t at = 0; at < input.size(); at += step) chunks.push_back(std::string_view(input).substr(at, step));
    CHECK(torsion::web::test::ws_parse(chunks, {}) == whole);
  }
  // A 64-bit length with the top bit set is an error.
  const std::string bad = std::string("\x82\xff\x80\0\0\0\0\0\0\0", 10) + "mask";
  CHECK(parse_every_cut(bad).error == ws_close::protocol_error);
}

TEST_CASE("ws_frame: masking per side") {
  CHECK(parse_every_cut(ws_frame(WsOpcode::text, "x", true, false)).error == ws_close::protocol_error);
  CHECK(parse_every_cut(ws_frame(WsOpcode::text, "x", true, true), client_side()).error ==
        ws_close::protocol_error);
  const WsParse r = parse_every_cut(ws_frame(WsOpcode::text, "from server", true, false), client_side());
  CHECK(r.events == std::vector<std::string>{"text:from server"});
}

TEST_CASE("ws_frame: reserved bits and opcodes") {
  std::string rsv2 = ws_frame(WsOpcode::text, "x");
  rsv2[0] = static_cast<char>(rsv2[0] | 0x20);
  CHECK(parse_every_cut(rsv2).error == ws_close::protocol_error);
  const std::string rsv1 = ws_frame(WsOpcode::text, "x", true, true, true);
  CHECK(parse_every_cut(rsv1).error == ws_close::protocol_error);
  WsParserOptions deflate;
  deflate.allow_rsv1 = true;
  CHECK(parse_every_cut(rsv1, deflate).events == std::vector<std::string>{"text+z:x"});
  // RSV1 on a continuation or control frame is an error even with the extension.
  CHECK(parse_every_cut(ws_frame(WsOpcode::binary, "a", false) +
                            ws_frame(WsOpcode::continuation, "b", true, true, true),
                        deflate)
            .error == ws_close::protocol_error);
  CHECK(parse_every_cut(ws_frame(WsOpcode::ping, "", true, true, true), deflate).error ==
        ws_close::protocol_error);
  for (unsigned op : {3u, 7u, 0xBu, 0xFu}) {
    CAPTURE(op);
    CHECK(parse_every_cut(ws_frame(static_cast<WsOpcode>(op), "x")).error == ws_close::protocol_error);
  }
}

TEST_CASE("ws_frame: control frames are short and never fragmented") {
  CHECK(parse_every_cut(ws_frame(WsOpcode::ping, "x", false)).error == ws_close::protocol_error);
  CHECK(parse_every_cut(ws_frame(WsOpcode::ping, std::string(125, 'p'))).events.size() == 1);
  CHECK(parse_every_cut(ws_frame(WsOpcode::pong, std::string(126, 'p'))).error == ws_close::protocol_error);
}

TEST_CASE("ws_frame: continuation and message order") {
  CHECK(parse_every_cut(ws_frame(WsOpcode::continuation, "x")).error == ws_close::protocol_error);
  CHECK(parse_every_cut(ws_frame(WsOpcode::text, "a", false) + ws_frame(WsOpcode::text, "b")).error ==
        ws_close::protocol_error);
}

TEST_CASE("ws_frame: the size limit fails at the header, before the payload") {
  WsParserOptions options;
  options.max_message = 10;
  CHECK(parse_every_cut(ws_frame(WsOpcode::binary, std::string(10, 'x')), options).events.size() == 1);
  const std::string big = ws_frame(WsOpcode::binary, std::string(11, 'x'));
  WsFrameParser parser(options);
  torsion::web::test::WsRecorder sink;
  CHECK(parser.feed(std::string_view(big).substr(0, 6), sink) == 6);  // header and mask only
  CHECK(parser.error_code() == ws_close::message_too_big);
  // Fragments add up.
  CHECK(parse_every_cut(ws_frame(WsOpcode::binary, "123456", false) +
                            ws_frame(WsOpcode::continuation, "7890x"),
                        options)
            .error == ws_close::message_too_big);
  // A 2^63-1 length does not wrap the sum.
  options.max_message = ~std::uint64_t{0} >> 1;
  const std::string huge = ws_frame(WsOpcode::binary, "a", false) +
                           std::string("\x80\xff\x7f\xff\xff\xff\xff\xff\xff\xff", 10) + "mask";
  CHECK(parse_every_cut(huge, options).error == ws_close::message_too_big);
}

TEST_CASE("ws_frame: invalid UTF-8 fails at the first bad byte, before the frame ends") {
  const std::string input = ws_frame(WsOpcode::text, "ok\xff and more");
  WsFrameParser parser;
  torsion::web::test::WsRecorder sink;
  parser.feed(std::string_view(input).substr(0, 6 + 3), sink);  // header, mask, "ok\xff"
  CHECK(parser.error_code() == ws_close::invalid_payload);
  CHECK(parse_every_cut(input).error == ws_close::invalid_payload);
  // A message that ends inside a character.
  CHECK(parse_every_cut(ws_frame(WsOpcode::text, "\xe2\x82")).error == ws_close::invalid_payload);
  // Binary is not checked.
  CHECK(parse_every_cut(ws_frame(WsOpcode::binary, "\xff")).error == 0);
}

TEST_CASE("ws_frame: close frames") {
  WsParse r = parse_every_cut(close_frame(ws_close_payload(1000, "bye")) + "after");
  CHECK(r.events == std::vector<std::string>{"close:1000:bye"});
  CHECK(r.closed);
  CHECK(r.used == 2 + 4 + 5);
  CHECK(parse_every_cut(close_frame("")).events == std::vector<std::string>{"close:1005:"});
  CHECK(parse_every_cut(close_frame("\x03")).error == ws_close::protocol_error);
  for (unsigned code : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2999u, 5000u, 65535u}) {
    CAPTURE(code);
    std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    CHECK(parse_every_cut(close_frame(payload)).error == ws_close::protocol_error);
  }
  for (unsigned code : {1000u, 1003u, 1007u, 1014u, 3000u, 4999u}) {
    CAPTURE(code);
    CHECK(parse_every_cut(close_frame(ws_close_payload(static_cast<std::uint16_t>(code), ""))).error == 0);
  }
  CHECK(parse_every_cut(close_frame(ws_close_payload(1000, "\xc3"))).error == ws_close::invalid_payload);
}

TEST_CASE("ws_frame: Utf8Validator") {
  auto valid = [](std::vector<std::string_view> pieces) {
    Utf8Validator v;
    for (auto p : pieces)
      if (!v.feed(p)) return false;
    return v.complete();
  };
  CHECK(valid({"plain ascii, long enough for the word loop"}));
  CHECK(valid({"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"}));
  CHECK(valid({"\xf0\x9f", "\x98", "\x80"}));          // U+1F600 in three pieces
  CHECK(valid({"\xf4\x8f\xbf\xbf"}));                  // U+10FFFF
  CHECK(valid({"\xed\x9f\xbf"}));                      // U+D7FF
  CHECK_FALSE(valid({"\xc0\x80"}));                    // overlong NUL
  CHECK_FALSE(valid({"\xe0\x80\x80"}));                // overlong
  CHECK_FALSE(valid({"\xed\xa0\x80"}));                // surrogate
  CHECK_FALSE(valid({"\xf4\x90\x80\x80"}));            // past U+10FFFF
  CHECK_FALSE(valid({"\xf5"}));
  CHECK_FALSE(valid({"\x80"}));
  CHECK_FALSE(valid({"\xe2\x82"}));                    // incomplete at the end
  Utf8Validator v;
  CHECK(v.feed("ab\xce"));
  CHECK_FALSE(v.complete());
  CHECK_FALSE(v.feed("A"));                            // fails at once, not at the end
  CHECK(v.failed());
  CHECK_FALSE(v.feed("ok"));
}

TEST_CASE("ws_frame: masking at any offset, headers and close payloads") {
  const unsigned char key[4] = {1, 2, 3, 4};
  std::string data(37, 'z');
  std::string whole = data;
  ws_mask(whole.data(), whole.size(), key);
  for (std::size_t at = 0; at <= data.size(); ++at) {
    std::string pieces = data;
    ws_mask(pieces.data(), at, key, 0);
    ws_mask(pieces.data() + at, pieces.size() - at, key, at);
    REQUIRE(pieces == whole);
  }
  char head[ws_max_header];
  CHECK(ws_frame_header(head, WsOpcode::text, true, false, 125) == 2);
  CHECK(ws_frame_header(head, WsOpcode::text, true, false, 126) == 4);
  CHECK(ws_frame_header(head, WsOpcode::text, true, false, 65535) == 4);
  CHECK(ws_frame_header(head, WsOpcode::text, true, false, 65536) == 10);
  CHECK(ws_frame_header(head, WsOpcode::text, true, false, 65536, key) == 14);
  CHECK(ws_close_payload(ws_close::no_status, "x").empty());
  const std::string reason = std::string(122, 'a') + "\xc3\xa9\xc3\xa9";
  const std::string payload = ws_close_payload(1000, reason);
  CHECK(payload.size() == 2 + 122);  // cut before the character that does not fit whole
  CHECK(ws_close_code_valid(1000));
  CHECK_FALSE(ws_close_code_valid(1005));
}
