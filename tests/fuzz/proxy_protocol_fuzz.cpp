// PROXY header parser and wrapper: never reads out of bounds or throws; the parse is
// monotone (a complete or invalid verdict on a prefix stands for the whole input); the
// wrapper passes the bytes after the header through unchanged however they are cut.

#include <string>
#include <vector>

#include "framework/testing/string_transport.hpp"
#include "protocols/proxy_protocol.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;
using Status = ProxyParseResult::Status;

namespace {

struct Sink : Protocol {
  std::string& received;
  explicit Sink(std::string& r) : received(r) {}
  void data_received(std::string_view d) override { received.append(d); }
};

struct SinkFactory : Factory {
  std::string received;
  int built = 0;
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    ++built;
    return std::make_unique<Sink>(received);
  }
};

std::string run(const std::vector<std::string_view>& chunks, const ProxyOptions& options,
                int& built) {
  SinkFactory inner;
  ProxyProtocolFactory factory(inner, options);
  auto p = factory.build_protocol(Address::ip("10.0.0.1", 1));
  testing::StringTransport t;
  t.connect(*p);
  for (auto chunk : chunks) {
    if (!t.connected()) break;
    p->data_received(chunk);
  }
  built = inner.built;
  FUZZ_CHECK(inner.built <= 1);
  FUZZ_CHECK(!(inner.built == 1 && factory.rejected_count() == 1));
  t.disconnect();
  return inner.received;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::uint8_t flags = in.take_byte();
  ProxyOptions options;
  options.accept_v1 = !(flags & 1);
  options.accept_v2 = !(flags & 2);
  options.max_v2_length = 16 + in.take_byte() * 4u;
  const std::uint8_t seed = in.take_byte();

  const ProxyParseResult whole = parse_proxy_header(in.data, options);
  if (whole.status == Status::complete) {
    FUZZ_CHECK(whole.consumed <= in.data.size());
    const ProxyParseResult exact = parse_proxy_header(in.data.substr(0, whole.consumed), options);
    FUZZ_CHECK(exact.status == Status::complete && exact.consumed == whole.consumed);
    if (whole.consumed > 0) {
      const auto shorter = parse_proxy_header(in.data.substr(0, whole.consumed - 1), options);
      FUZZ_CHECK(shorter.status == Status::incomplete);
    }
  } else if (whole.status == Status::invalid) {
    FUZZ_CHECK(whole.error.has_value());
  }
  int built_whole = 0, built_cut = 0;
  const std::string a = run({in.data}, options, built_whole);
  const std::string b = run(torsion::fuzz::cut(in.data, seed), options, built_cut);
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(built_whole == built_cut);
  if (whole.status == Status::complete) FUZZ_CHECK(a == in.data.substr(whole.consumed));
  return 0;
}
