#include "web/byte_range.hpp"

#include <unistd.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "framework/file_sender.hpp"
#include "web/detail/conditional.hpp"
#include "web/detail/field_text.hpp"
#include "web/detail/file_range.hpp"
#include "web/http_message.hpp"

namespace torsion::web {

namespace {

using detail::trim_ows;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// A run of digits, kept as text so that numbers past 2^64 still compare exactly.
struct Number {
  std::string_view digits;  // leading zeros dropped ("" is zero)
  static Number of(std::string_view s) noexcept {
    while (!s.empty() && s.front() == '0') s.remove_prefix(1);
    return Number{s};
  }
  bool is_zero() const noexcept { return digits.empty(); }
  bool less(const Number& other) const noexcept {
    if (digits.size() != other.digits.size()) return digits.size() < other.digits.size();
    return digits < other.digits;
  }
  // The value, or the largest std::uint64_t for a larger number.
  std::uint64_t value() const noexcept {
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t v = 0;
    for (char c : digits) {
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (max - d) / 10) return max;
      v = v * 10 + d;
    }
    return v;
  }
};

// Splits off the leading run of digits of `s` (at least one): false if there is none.
bool take_digits(std::string_view& s, Number& out) noexcept {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  if (n == 0) return false;
  out = Number::of(s.substr(0, n));
  s.remove_prefix(n);
  return true;
}

struct Interval {
  std::uint64_t first, last;
};

// A file source moved to a range's first byte: reads and sendfile go on from there.
class OffsetSource final : public ByteSource {
 public:
  OffsetSource(std::unique_ptr<ByteSource> inner, std::uint64_t offset)
      : inner_(std::move(inner)), offset_(offset) {}
  std::size_t read(std::span<char> out, std::error_code& ec) override {
    const std::size_t n = inner_->read(out, ec);
    if (!ec) offset_ += n;
    return n;
  }
  int file_descriptor() const noexcept override { return inner_->file_descriptor(); }
  std::optional<std::uint64_t> size_at_open() const noexcept override {
    return inner_->size_at_open();
  }
  std::optional<std::int64_t> modified_at_open() const noexcept override {
    return inner_->modified_at_open();
  }
  std::optional<std::uint64_t> file_offset() const noexcept override { return offset_; }

 private:
  std::unique_ptr<ByteSource> inner_;
  std::uint64_t offset_;
};

}  // namespace

ByteRange resolve_byte_range(std::string_view field, std::uint64_t size, RangeLimits limits) {
  const ByteRange whole{};
  if (field.size() > limits.max_field) return whole;
  field = trim_ows(field);
  constexpr std::string_view unit = "bytes=";
  if (field.size() < unit.size() || !iequals(field.substr(0, unit.size()), unit)) return whole;
  field.remove_prefix(unit.size());

  std::vector<Interval> ranges;
  std::size_t elements = 0;
  bool any_spec = false;
  bool empty_suffix = false;  // a satisfiable suffix of a 0-byte representation
  for (;;) {
    const std::size_t comma = field.find(',');
    std::string_view spec = trim_ows(field.substr(0, comma));
    if (++elements > limits.max_ranges) return whole;
    if (!spec.empty()) {
      any_spec = true;
      Number first, last;
      if (spec.front() == '-') {  // suffix-range: the last N bytes
        spec.remove_prefix(1);
        if (!take_digits(spec, last) || !spec.empty()) return whole;
        if (!last.is_zero()) {
          if (size == 0) {
            empty_suffix = true;
          } else {
            ranges.push_back({size - std::min(last.value(), size), size - 1});
          }
        }
      } else {  // int-range: first-pos "-" [ last-pos ]
        if (!take_digits(spec, first) || spec.empty() || spec.front() != '-') return whole;
        spec.remove_prefix(1);
        const bool open = spec.empty();
        if (!open && (!take_digits(spec, last) || !spec.empty())) return whole;
        if (!open && last.less(first)) return whole;  // invalid: the whole field is ignored
        const std::uint64_t from = first.value();
        if (from < size)
          ranges.push_back({from, open ? size - 1 : std::min(last.value(), size - 1)});
      }
    }
    if (comma == std::string_view::npos) break;
    field.remove_prefix(comma + 1);
  }
  if (!any_spec || empty_suffix) return whole;
  if (ranges.empty()) return ByteRange{ByteRange::Kind::unsatisfiable, 0, 0};
  std::sort(ranges.begin(), ranges.end(),
            [](const Interval& a, const Interval& b) { return a.first < b.first; });
  Interval merged = ranges.front();
  for (const Interval& r : ranges) {
    if (r.first > merged.last + 1) return whole;  // apart: multipart is not produced
    merged.last = std::max(merged.last, r.last);
  }
  return ByteRange{ByteRange::Kind::partial, merged.first, merged.last};
}

namespace detail {

void answer_range(const Request& request, int& status, Headers& headers, std::string& body,
                  std::unique_ptr<ByteSource>& file, std::uint64_t& file_size) {
  if (!file || status != 200 || (request.method() != "GET" && request.method() != "HEAD")) return;
  const int fd = file->file_descriptor();
  if (fd < 0 || headers.has("content-range")) return;  // not seekable, or the handler's own
  if (const auto accept = headers.get("accept-ranges"); accept && !iequals(*accept, "bytes"))
    return;  // "none": the handler refuses ranges
  headers.set("Accept-Ranges", "bytes");
  if (request.headers().count("range") != 1) return;
  // If-Range: the range only for the representation the client has (web/conditional.cpp).
  if (const auto if_range = request.header("if-range"); if_range && !if_range_holds(*if_range, headers))
    return;
  const ByteRange range = resolve_byte_range(*request.header("range"), file_size);
  if (range.kind == ByteRange::Kind::unsatisfiable) {
    status = 416;
    headers.set("Content-Range", "bytes */" + std::to_string(file_size));
    headers.set("Content-Type", "text/plain; charset=utf-8");
    body = "range not satisfiable\n";
    file.reset();
    return;
  }
  if (range.kind != ByteRange::Kind::partial) return;
  // The representation starts at the source's offset (0 for a file just opened).
  std::uint64_t base = 0;
  if (const auto at = file->file_offset()) {
    base = *at;
  } else {
    const ::off_t cur = ::lseek(fd, 0, SEEK_CUR);
    if (cur < 0) return;
    base = static_cast<std::uint64_t>(cur);
  }
  if (range.first > std::numeric_limits<std::uint64_t>::max() - base) return;
  const std::uint64_t start = base + range.first;
  if (start > static_cast<std::uint64_t>(std::numeric_limits<::off_t>::max()) ||
      ::lseek(fd, static_cast<::off_t>(start), SEEK_SET) < 0)
    return;  // the whole file then, from where it was
  status = 206;
  headers.set("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                   std::to_string(range.last) + "/" + std::to_string(file_size));
  file = std::make_unique<OffsetSource>(std::move(file), start);
  file_size = range.length();
}

}  // namespace detail

}  // namespace torsion::web
