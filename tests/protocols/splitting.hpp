#pragma once
// Feeds a protocol its input cut in every way that matters, over a StringTransport, as
// Twisted's test_basic does for packet sizes 1..N: every chunk size from 1 to the input's
// length, and every split in two at each byte boundary. Chunks are delivered the way a
// real transport delivers reads: nothing after the transport was closed, nothing while
// its reading is paused (the rest waits for pump()).

#include <doctest/doctest.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/testing/string_transport.hpp"

namespace torsion::test {

// One way of cutting an input, and its name for failure messages.
struct Cut {
  std::string name;
  std::vector<std::string_view> chunks;
};

// Every chunk size 1..size, then every split in two (boundaries 1..size-1).
inline std::vector<Cut> every_cut(std::string_view input) {
  std::vector<Cut> cuts;
  if (input.empty()) return {Cut{"empty", {}}};
  for (std::size_t size = 1; size <= input.size(); ++size) {
    Cut cut{"chunks of " + std::to_string(size), {}};
    for (std::size_t at = 0; at < input.size(); at += size)
      cut.chunks.push_back(input.substr(at, size));
    cuts.push_back(std::move(cut));
  }
  for (std::size_t at = 1; at < input.size(); ++at)
    cuts.push_back(Cut{"split at " + std::to_string(at), {input.substr(0, at), input.substr(at)}});
  return cuts;
}

// Delivers chunks to a protocol like a transport would.
class Feeder {
 public:
  Feeder(testing::StringTransport& transport, Protocol& protocol,
         std::vector<std::string_view> chunks)
      : transport_(transport), protocol_(protocol), chunks_(std::move(chunks)) {}

  // Feeds the chunks still pending while the transport is open and reading. Returns
  // true when everything was fed.
  bool pump() {
    while (next_ < chunks_.size() && transport_.connected() && !transport_.reading_paused())
      protocol_.data_received(chunks_[next_++]);
    return done();
  }
  bool done() const { return next_ == chunks_.size(); }

 private:
  testing::StringTransport& transport_;
  Protocol& protocol_;
  std::vector<std::string_view> chunks_;
  std::size_t next_ = 0;
};

// For every cut of `input`: builds a protocol with make(), connects it to a fresh
// StringTransport, pumps the chunks and calls check(protocol, transport, feeder). The
// cut's name is attached to any failure.
template <class P>
void for_every_cut(std::string_view input, const std::function<std::unique_ptr<P>()>& make,
                   const std::function<void(P&, testing::StringTransport&, Feeder&)>& check) {
  for (const Cut& cut : every_cut(input)) {
    INFO("input cut: " << cut.name);
    testing::StringTransport transport;
    std::unique_ptr<P> protocol = make();
    transport.connect(*protocol);
    Feeder feeder(transport, *protocol, cut.chunks);
    feeder.pump();
    check(*protocol, transport, feeder);
  }
}

}  // namespace torsion::test

// Lets failed CHECKs on event lists show them.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (const auto& s : v) {
      out += " \"";
      for (char c : s) {
        if (c == '\r')
          out += "\\r";
        else if (c == '\n')
          out += "\\n";
        else
          out += c;
      }
      out += "\"";
    }
    out += " }";
    return doctest::String(out.c_str());
  }
};
