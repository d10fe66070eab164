#pragma once
// Shared by the parser's unit tests and its fuzz targets: records what an HttpParser
// reports as a list of events (consecutive body pieces merged, so every cut of an input
// gives the same list) and the refusal, if any.

#include <string>
#include <string_view>
#include <vector>

#include "web/http_parser.hpp"

namespace torsion::web::test {

struct Recorder : HttpParser::Sink {
  std::vector<std::string> events;
  void head_received(HttpHead& h) override {
    std::string e = "head ";
    if (!h.method.empty())
      e += h.method + " " + h.target;
    else
      e += std::to_string(h.status) + " " + h.reason;
    e += " 1." + std::to_string(h.version_minor);
    e += h.keep_alive ? " keep" : " close";
    if (h.expect_continue) e += " continue";
    if (h.upgrade) e += " upgrade";
    for (const auto& [n, v] : h.headers.fields()) e += " [" + n + "=" + v + "]";
    events.push_back(e);
  }
  void body_data(std::string_view d) override {
    if (!events.empty() && events.back().rfind("body ", 0) == 0)
      events.back().append(d);
    else
      events.push_back("body " + std::string(d));
  }
  void message_complete(const Headers& trailers) override {
    std::string e = "end";
    for (const auto& [n, v] : trailers.fields()) e += " [" + n + "=" + v + "]";
    events.push_back(e);
  }
};

struct ParseResult {
  std::vector<std::string> events;
  int status = 0;  // the refusal, 0 if none
  bool eof_clean = false;
  bool operator==(const ParseResult&) const = default;
};

// Feeds the chunks the way a server does (after each message, the rest of the chunk);
// with `eof`, ends the stream.
inline ParseResult parse_chunks(HttpParser::Kind kind, const std::vector<std::string_view>& chunks,
                                const HttpLimits& limits = {}, bool eof = false,
                                bool head_response = false) {
  Recorder rec;
  HttpParser parser(kind, rec, limits);
  parser.expect_head_response(head_response);
  for (std::string_view chunk : chunks) {
    while (!chunk.empty() && !parser.failed()) chunk.remove_prefix(parser.feed(chunk));
    if (parser.failed()) break;
  }
  ParseResult r;
  if (eof && !parser.failed()) r.eof_clean = parser.feed_eof();
  r.events = rec.events;
  if (parser.failed()) r.status = parser.error()->status();
  return r;
}

}  // namespace torsion::web::test
