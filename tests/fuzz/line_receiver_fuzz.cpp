// LineReceiver and LineOnlyReceiver: any input, cut any way, gives the same events as
// the input in one read; lines respect the limit and contain no delimiter; nothing throws.

#include <algorithm>
#include <string>
#include <vector>

#include "framework/testing/string_transport.hpp"
#include "protocols/line_receiver.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;
using torsion::fuzz::Input;

namespace {

// Lines "RAW n" switch to raw mode for n bytes (mod 64) and hand back the rest with
// set_line_mode(rest); "SIZE n" does the same with expect_raw; raw pieces are merged since
// their cut depends on the reads.
class Probe : public LineReceiver {
 public:
  Probe(std::string delimiter, std::size_t max) : LineReceiver(std::move(delimiter), max) {}
  std::vector<std::string> events;
  std::size_t raw_wanted = 0;
  std::string raw;
  bool counted = false;
  bool keep_open = false;

  void line_received(std::string_view line) override {
    FUZZ_CHECK(line.size() <= max_length());
    FUZZ_CHECK(line.find(delimiter()) == std::string_view::npos);
    FUZZ_CHECK(line_mode());
    events.push_back("L" + std::string(line));
    if (line.size() >= 6 && line.substr(0, 5) == "SIZE ") {
      raw.clear();
      counted = true;
      expect_raw(static_cast<unsigned char>(line[5]) % 64);
      if (line_mode()) {
        counted = false;
        events.push_back("R");
      }
    } else if (line.size() >= 5 && line.substr(0, 4) == "RAW ") {
      raw_wanted = static_cast<unsigned char>(line[4]) % 64;
      raw.clear();
      set_raw_mode();
      if (raw_wanted == 0) {
        events.push_back("R");
        set_line_mode();
      }
    } else if (line == "QUIT") {
      transport().lose_connection();
    }
  }
  void raw_data_received(std::string_view data) override {
    FUZZ_CHECK(!data.empty());
    if (counted) {
      raw.append(data);
      FUZZ_CHECK(line_mode() == (raw_remaining() == 0));
      if (raw_remaining() == 0) {
        counted = false;
        events.push_back("R" + raw);
      }
      return;
    }
    FUZZ_CHECK(raw.size() < raw_wanted);
    const std::size_t take = std::min(data.size(), raw_wanted - raw.size());
    raw.append(data.substr(0, take));
    if (raw.size() == raw_wanted) {
      events.push_back("R" + raw);
      set_line_mode(data.substr(take));
    }
  }
  void line_length_exceeded(std::string_view line) override {
    FUZZ_CHECK(line.size() > max_length());
    events.push_back("X");
    FUZZ_CHECK(buffered_size() == 0);
    if (!keep_open) LineReceiver::line_length_exceeded(line);
  }
};

// After an over-long line kept open, what follows depends on the reads (as in Twisted,
// the rest of the read is dropped with it): compare up to the first one.
std::vector<std::string> up_to_exceeded(std::vector<std::string> events) {
  const auto x = std::find(events.begin(), events.end(), "X");
  if (x != events.end()) events.erase(x + 1, events.end());
  return events;
}

class OnlyProbe : public LineOnlyReceiver {
 public:
  OnlyProbe(std::string delimiter, std::size_t max) : LineOnlyReceiver(std::move(delimiter), max) {}
  std::vector<std::string> events;
  bool keep_open = false;
  void line_received(std::string_view line) override {
    FUZZ_CHECK(line.size() <= max_length());
    events.push_back(std::string(line));
  }
  void line_length_exceeded(std::string_view line) override {
    events.push_back("X");
    if (!keep_open) LineOnlyReceiver::line_length_exceeded(line);
  }
};

template <class P>
std::vector<std::string> run(const std::vector<std::string_view>& chunks, const std::string& delim,
                             std::size_t max, bool keep_open = false) {
  testing::StringTransport t;
  P p(delim, max);
  if constexpr (requires { p.keep_open; }) p.keep_open = keep_open;
  t.connect(p);
  for (auto chunk : chunks) {
    if (!t.connected()) break;
    p.data_received(chunk);
  }
  return p.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  static const char* const kDelimiters[] = {"\r\n", "\n", "", "END", "\r\n\r\n"};  // "" is NUL
  const std::uint8_t pick = in.take_byte();
  const std::string delimiter =
      pick % 5 == 2 ? std::string(1, '\0') : std::string(kDelimiters[pick % 5]);
  const std::size_t max = in.take_byte() % 80;
  const std::uint8_t seed = in.take_byte();
  const bool keep_open = seed & 1;

  const std::vector<std::string_view> whole{in.data};
  const auto chunks = torsion::fuzz::cut(in.data, seed);
  FUZZ_CHECK(run<Probe>(whole, delimiter, max) == run<Probe>(chunks, delimiter, max));
  FUZZ_CHECK(up_to_exceeded(run<Probe>(whole, delimiter, max, true)) ==
             up_to_exceeded(run<Probe>(chunks, delimiter, max, true)));
  FUZZ_CHECK(run<OnlyProbe>(whole, delimiter, max, keep_open) ==
             run<OnlyProbe>(chunks, delimiter, max, keep_open));
  return 0;
}
