// resolve_byte_range: a Range field is not fed in pieces, so instead of every split the
// target checks what must hold however the field is written: a partial answer lies inside
// the representation and comes back the same when written as "bytes=first-last"; the
// unit's case, spaces and tabs at the ends, an empty list element, and the range-set
// repeated (within the limits) change nothing; a field past max_field is ignored.
// The same bytes go to the conditional requests' field parsers (web/conditional.cpp),
// which are no more incremental: an HTTP-date comes back from its own formatting and
// ignores spaces around it, a field past 64 bytes is no date; an entity-tag list answers
// the same with spaces, an empty element or itself appended, a strong match is a weak
// one too, a list past max_tag_list is malformed; If-Range holds only for the ETag or
// the Last-Modified date given.

#include <cctype>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_support.hpp"
#include "web/byte_range.hpp"
#include "web/detail/conditional.hpp"
#include "web/detail/field_text.hpp"

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

// The conditional requests' parsers on `field`.
void check_conditional(std::string_view field) {
  namespace cond = torsion::web::detail;
  using cond::TagMatch;
  const auto date = cond::parse_http_date(field);
  if (field.size() > 64) FUZZ_CHECK(!date);
  if (date && *date >= 0) {
    char text[32];
    const std::size_t n = cond::format_http_date(*date, text);
    FUZZ_CHECK(n == 29);
    FUZZ_CHECK(cond::parse_http_date(std::string_view(text, n)) == date);
  }
  if (field.size() + 2 <= 64)
    FUZZ_CHECK(cond::parse_http_date(" " + std::string(field) + "\t") == date);

  const std::string ours = "\"a\"";
  const TagMatch weak = cond::match_tag_list(field, ours, true);
  const TagMatch strong = cond::match_tag_list(field, ours, false);
  const bool star = cond::trim_ows(field) == "*";
  FUZZ_CHECK((weak == TagMatch::malformed) == (strong == TagMatch::malformed));
  if (strong == TagMatch::yes) FUZZ_CHECK(weak == TagMatch::yes);
  FUZZ_CHECK(cond::match_tag_list(field, "W/" + ours, true) == weak);
  if (!star) FUZZ_CHECK(cond::match_tag_list(field, "W/" + ours, false) != TagMatch::yes);
  if (field.size() > cond::max_tag_list) FUZZ_CHECK(weak == TagMatch::malformed);
  if (weak != TagMatch::malformed && !star) {
    const std::string list(field);
    if (list.size() + 4 <= cond::max_tag_list)
      FUZZ_CHECK(cond::match_tag_list("\t" + list + " , ", ours, true) == weak);
    if (list.size() * 2 + 1 <= cond::max_tag_list)
      FUZZ_CHECK(cond::match_tag_list(list + "," + list, ours, true) == weak);
    if (list.size() + 5 <= cond::max_tag_list)
      FUZZ_CHECK(cond::match_tag_list(list + ", " + ours, ours, true) == TagMatch::yes);
  }
  torsion::web::Headers response;
  response.set("ETag", ours);
  response.set("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT");
  if (cond::if_range_holds(field, response))
    FUZZ_CHECK(cond::trim_ows(field) == ours || date == 1700000000);
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
  check_conditional(field);
  return 0;
}
