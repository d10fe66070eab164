// resolve_byte_range: a Range field is not fed in pieces, so instead of every split the
// target checks what must hold however the field is written: a partial answer lies inside
// the representation and comes back the same when written as "bytes=first-last"; the
// unit's case, spaces and tabs at the ends, an empty list element, and the range-set
// repeated (within the limits) change nothing; a field past max_field is ignored.

#include <cctype>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_support.hpp"
#include "web/byte_range.hpp"

using namespace torsion::web;

namespace {

bool same(const ByteRange& a, const ByteRange& b) {
  if (a.kind != b.kind) return false;
  return a.kind != ByteRange::Kind::partial || (a.first == b.first && a.last == b.last);
}

std::size_t count(std::string_view s, char c) {
  std::size_t n = 0;
  for (char x : s) n += x == c;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  torsion::fuzz::Input in{std::string_view(reinterpret_cast<const char*>(bytes), size)};
  // The representation's size: small, or (first byte 255) near the top of the range.
  const std::uint8_t scale = in.take_byte();
  std::uint64_t length = in.take_byte() * 256u + in.take_byte();
  if (scale == 255) length = UINT64_MAX - length;
  RangeLimits limits;
  limits.max_field = 8u + in.take_byte() * 4u;
  limits.max_ranges = 1u + in.take_byte() % 24u;
  const std::string_view field = in.data;

  const ByteRange r = resolve_byte_range(field, length, limits);
  if (field.size() > limits.max_field) FUZZ_CHECK(r.kind == ByteRange::Kind::whole);
  if (r.kind == ByteRange::Kind::partial) {
    FUZZ_CHECK(r.first <= r.last && r.last < length);
    FUZZ_CHECK(r.length() <= length);
    const std::string exact = "bytes=" + std::to_string(r.first) + "-" + std::to_string(r.last);
    FUZZ_CHECK(same(resolve_byte_range(exact, length), r));
  }
  // The unit in another case.
  std::string upper(field);
  for (std::size_t i = 0; i < upper.size() && i < 5; ++i)
    upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  FUZZ_CHECK(same(resolve_byte_range(upper, length, limits), r));
  // Spaces and tabs around the field, where they fit.
  if (field.size() + 2 <= limits.max_field)
    FUZZ_CHECK(same(resolve_byte_range(" " + std::string(field) + "\t", length, limits), r));
  // The range-set with an empty element added, then repeated, where they fit.
  const std::size_t eq = field.find('=');
  if (eq != std::string_view::npos && count(field, ',') + 2 <= limits.max_ranges &&
      field.size() + 2 <= limits.max_field)
    FUZZ_CHECK(same(resolve_byte_range(std::string(field) + ", ", length, limits), r));
  if (eq != std::string_view::npos && count(field, ',') * 2 + 2 <= limits.max_ranges &&
      field.size() * 2 <= limits.max_field) {
    const std::string twice = std::string(field) + "," + std::string(field.substr(eq + 1));
    FUZZ_CHECK(same(resolve_byte_range(twice, length, limits), r));
  }
  return 0;
}
