// LineDeadlineFactory's delimiter scan: however the input is cut, the wrapper finds the
// lines LineReceiver would (non-overlapping, left to right), so the countdown runs exactly
// when a partial line is pending and started at the read that brought its first byte
// (checked against a model on the whole input, on the manual clock); every byte reaches
// the wrapped protocol unchanged; nothing throws.

#include <string>
#include <vector>

#include "framework/testing/manual_clock.hpp"
#include "framework/testing/string_transport.hpp"
#include "protocols/timeout.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;

namespace {

struct Sink : Protocol {
  std::string* received;
  explicit Sink(std::string* r) : received(r) {}
  void data_received(std::string_view d) override { received->append(d); }
};

struct SinkFactory : Factory {
  std::string received;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<Sink>(&received);
  }
};

// The model: where the pending line starts (after the last delimiter), or data.size().
std::size_t line_start(std::string_view data, std::string_view delim) {
  std::size_t pos = 0;
  for (std::size_t at; (at = data.find(delim, pos)) != std::string_view::npos;)
    pos = at + delim.size();
  return pos;
}

// Feeds chunk i at time i; then checks when (and whether) the connection times out.
void check(std::string_view data, const std::vector<std::string_view>& chunks,
           const std::string& delim) {
  const double n = static_cast<double>(chunks.size());
  const double deadline = n + 2;  // nothing can expire while the chunks arrive
  testing::ManualClock clock;
  SinkFactory inner;
  LineDeadlineFactory factory(inner, clock, deadline, delim);
  auto p = factory.build_protocol(Address::ip("10.0.0.1", 1));
  FUZZ_CHECK(p != nullptr);
  testing::StringTransport t;
  t.connect(*p);
  std::size_t offset = 0, start_chunk = 0;
  const std::size_t start = line_start(data, delim);
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (i > 0) clock.advance(1);
    if (offset <= start && start < offset + chunks[i].size()) start_chunk = i;
    offset += chunks[i].size();
    p->data_received(chunks[i]);
    FUZZ_CHECK(!t.aborted());
  }
  FUZZ_CHECK(inner.received == data);
  const double now = clock.seconds();
  if (start < data.size()) {  // a line is pending: it expires at start_chunk + deadline
    const double expiry = static_cast<double>(start_chunk) + deadline;
    clock.advance(expiry - now - 0.5);
    FUZZ_CHECK(!t.aborted());
    clock.advance(0.5);
    FUZZ_CHECK(t.aborted());
    FUZZ_CHECK(factory.expired_count() == 1);
  } else {
    clock.advance(deadline + 1);
    FUZZ_CHECK(!t.aborted());
    FUZZ_CHECK(factory.expired_count() == 0);
  }
  t.disconnect();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::uint8_t flags = in.take_byte();
  const std::uint8_t seed = in.take_byte();
  std::string delim;
  for (unsigned i = 0; i <= (flags & 3u); ++i) delim.push_back(static_cast<char>(in.take_byte()));
  std::string data(in.data);
  if (flags & 4) {  // a two-letter alphabet: self-overlapping delimiters and near misses
    for (char& c : delim) c = static_cast<char>('a' + (c & 1));
    for (char& c : data) c = static_cast<char>('a' + (c & 1));
  }
  check(data, {data}, delim);
  check(data, torsion::fuzz::cut(data, seed, 1 + (flags >> 3)), delim);
  return 0;
}
