// PROXY header parser and wrapper: never reads out of bounds or throws; the parse is
// monotone (a complete or invalid verdict on a prefix stands for the whole input); the
// wrapper passes the bytes after the header through unchanged however they are cut.
// TLVs: a complete header's TLVs (and SSL sub-TLVs) fit inside it, respect max_tlvs and
// the unique id limit, a CRC32c TLV is 4 bytes (and matched), and the wrapped protocol
// sees the same header via proxy_header(). The writer: format_proxy_header of a parsed
// header parses back to the same header.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/testing/string_transport.hpp"
#include "protocols/proxy_header_writer.hpp"
#include "protocols/proxy_protocol.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace torsion;
using Status = ProxyParseResult::Status;

namespace {

struct SinkFactory;

struct Sink : Protocol {
  SinkFactory& factory;
  explicit Sink(SinkFactory& f) : factory(f) {}
  void connection_made() override;
  void data_received(std::string_view d) override;
};

struct SinkFactory : Factory {
  std::string received;
  int built = 0;
  std::optional<ProxyHeader> header;  // what proxy_header() gave the protocol
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    ++built;
    return std::make_unique<Sink>(*this);
  }
};

void Sink::connection_made() {
  const ProxyHeader* h = proxy_header(transport());
  FUZZ_CHECK(h != nullptr);
  if (h) factory.header = *h;
}
void Sink::data_received(std::string_view d) { factory.received.append(d); }

// The TLV invariants of a complete header.
void check_tlvs(const ProxyParseResult& r, const ProxyOptions& options) {
  const ProxyHeader& h = r.header;
  std::size_t bytes = 0, count = h.tlvs.size();
  for (const auto& t : h.tlvs) {
    bytes += 3 + t.value.size();
    if (t.type == proxy_tlv::unique_id) FUZZ_CHECK(t.value.size() <= 128);
    if (t.type == proxy_tlv::ssl) FUZZ_CHECK(t.value.size() >= 5);
    if (t.type == proxy_tlv::crc32c) FUZZ_CHECK(t.value.size() == 4);  // and it matched
  }
  FUZZ_CHECK(h.version == 2 || h.tlvs.empty());
  FUZZ_CHECK(bytes <= r.consumed);
  FUZZ_CHECK((h.find_tlv(proxy_tlv::ssl) != nullptr) == h.ssl.has_value());
  if (h.ssl) {
    std::size_t sub_bytes = 5;
    for (const auto& t : h.ssl->sub_tlvs) sub_bytes += 3 + t.value.size();
    FUZZ_CHECK(sub_bytes == h.find_tlv(proxy_tlv::ssl)->value.size());
    count += h.ssl->sub_tlvs.size();
    (void)h.ssl->version(), (void)h.ssl->common_name(), (void)h.ssl->cipher();
  }
  FUZZ_CHECK(count <= options.max_tlvs);
  if (auto id = h.unique_id()) FUZZ_CHECK(id->size() <= 128);
  (void)h.alpn(), (void)h.authority();
}

// format_proxy_header(h) reads back as h: the same version and addresses (for a header
// that names a client), the same TLVs in order (a CRC32c TLV's value is recomputed, and
// the reader verified it). The only header a parse gives that cannot be written holds
// two CRC32c TLVs (which cannot both verify): the writer must refuse that one.
void check_round_trip(const ProxyHeader& h) {
  std::size_t crcs = 0;
  for (const auto& t : h.tlvs) crcs += t.type == proxy_tlv::crc32c;
  std::string bytes;
  try {
    bytes = format_proxy_header(h);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(crcs > 1);
    return;
  }
  FUZZ_CHECK(crcs <= 1);
  ProxyOptions roomy;
  roomy.max_v2_length = 16 + 65535;
  roomy.max_tlvs = SIZE_MAX;
  const ProxyParseResult back = parse_proxy_header(bytes, roomy);
  FUZZ_CHECK(back.status == Status::complete && back.consumed == bytes.size());
  if (back.status != Status::complete) return;
  const ProxyHeader& b = back.header;
  FUZZ_CHECK(b.version == h.version && b.local == h.local);
  if (!h.local) FUZZ_CHECK(b.source == h.source && b.destination == h.destination);
  FUZZ_CHECK(b.tlvs.size() == h.tlvs.size());
  for (std::size_t i = 0; i < std::min(b.tlvs.size(), h.tlvs.size()); ++i) {
    FUZZ_CHECK(b.tlvs[i].type == h.tlvs[i].type);
    if (h.tlvs[i].type != proxy_tlv::crc32c) FUZZ_CHECK(b.tlvs[i].value == h.tlvs[i].value);
  }
  FUZZ_CHECK(b.ssl.has_value() == h.ssl.has_value());
}

// What the wrapper did with the input: the bytes the wrapped protocol got, how many
// protocols it built and how many headers it rejected.
struct Outcome {
  std::string received;
  int built = 0;
  std::size_t rejected = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const std::vector<std::string_view>& chunks, const ProxyOptions& options,
            std::optional<ProxyHeader>* header = nullptr) {
  SinkFactory inner;
  ProxyProtocolFactory factory(inner, options);
  auto p = factory.build_protocol(Address::ip("10.0.0.1", 1));
  testing::StringTransport t;
  t.connect(*p);
  for (auto chunk : chunks) {
    if (!t.connected()) break;
    p->data_received(chunk);
  }
  if (header) *header = inner.header;
  FUZZ_CHECK(inner.built <= 1);
  FUZZ_CHECK(!(inner.built == 1 && factory.rejected_count() == 1));
  t.disconnect();
  return {inner.received, inner.built, factory.rejected_count()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  const std::uint8_t flags = in.take_byte();
  ProxyOptions options;
  options.accept_v1 = !(flags & 1);
  options.accept_v2 = !(flags & 2);
  options.max_v2_length = 16 + in.take_byte() * 4u;
  if (flags & 4) options.max_tlvs = flags >> 3;  // else the default
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
    if (whole.header.version == 1) FUZZ_CHECK(whole.consumed <= kProxyV1MaxLength);
    check_tlvs(whole, options);
    check_round_trip(whole.header);
  } else if (whole.status == Status::invalid) {
    FUZZ_CHECK(whole.error.has_value());
  }
  // The parser and the wrapper agree, whether the bytes come in one read or cut up.
  std::optional<ProxyHeader> seen;
  const Outcome a = run({in.data}, options, &seen);
  const Outcome b = run(torsion::fuzz::cut(in.data, seed), options);
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(a.rejected == (whole.status == Status::invalid ? 1u : 0u));
  FUZZ_CHECK(a.built == (whole.status == Status::complete ? 1 : 0));
  if (whole.status == Status::complete) {
    FUZZ_CHECK(a.received == in.data.substr(whole.consumed));
    FUZZ_CHECK(seen.has_value());
    if (seen) {
      FUZZ_CHECK(seen->version == whole.header.version);
      FUZZ_CHECK(seen->tlvs.size() == whole.header.tlvs.size());
      FUZZ_CHECK(seen->ssl.has_value() == whole.header.ssl.has_value());
    }
  }
  return 0;
}
