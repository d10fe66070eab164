#include <charconv>
#include <ctime>

#include "framework/file_sender.hpp"
#include "web/detail/conditional.hpp"
#include "web/detail/field_text.hpp"
#include "web/http_message.hpp"

namespace torsion::web::detail {

namespace {

constexpr std::string_view day_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::int64_t last_formatted = 253402300799;  // 9999-12-31 23:59:59

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12): the era-based
// count (400-year eras of 146097 days, the year starting in March).
std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// Two (or four) digits at s[at]: their value, or -1.
int digits(std::string_view s, std::size_t at, std::size_t n) noexcept {
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// One entity-tag at the start of `s` ([W/] DQUOTE *etagc DQUOTE), removed from `s`;
// nullopt on a syntax error. `weak` tells whether it had W/.
std::optional<std::string_view> take_tag(std::string_view& s, bool& weak) noexcept {
  weak = s.starts_with("W/");
  std::string_view rest = weak ? s.substr(2) : s;
  if (rest.empty() || rest.front() != '"') return std::nullopt;
  std::size_t i = 1;
  for (;; ++i) {
    if (i == rest.size()) return std::nullopt;
    const auto c = static_cast<unsigned char>(rest[i]);
    if (c == '"') break;
    if (c < 0x21 || c == 0x7f) return std::nullopt;  // etagc: %x21 / %x23-7E / obs-text
  }
  const std::string_view opaque = rest.substr(0, i + 1);
  s = rest.substr(i + 1);
  return opaque;
}

// The ETag nginx gives a file: its mtime and size in hex.
std::string file_etag(std::int64_t mtime, std::uint64_t size) {
  char time_hex[16], size_hex[16];  // 64 bits are at most 16 hex digits
  const auto t = std::to_chars(time_hex, time_hex + sizeof time_hex,
                               static_cast<std::uint64_t>(mtime), 16);
  const auto z = std::to_chars(size_hex, size_hex + sizeof size_hex, size, 16);
  std::string tag = "\"";
  tag.append(time_hex, t.ptr).append(1, '-').append(size_hex, z.ptr).append(1, '"');
  return tag;
}

// What the If-None-Match fields of `request` (together, as one list) say of `etag`.
TagMatch none_match(const Headers& request, std::string_view etag) noexcept {
  std::size_t total = 0;
  TagMatch result = TagMatch::no;
  for (const auto& [name, value] : request.fields()) {
    if (!iequals(name, "if-none-match")) continue;
    total += value.size();
    if (total > max_tag_list) return TagMatch::malformed;
    const TagMatch m = match_tag_list(value, etag, true);
    if (m == TagMatch::malformed) return m;
    if (m == TagMatch::yes) result = m;
  }
  return result;
}

}  // namespace

std::size_t format_http_date(std::int64_t seconds, std::span<char> out) noexcept {
  if (seconds < 0 || seconds > last_formatted || out.size() < 30) return 0;
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return std::strftime(out.data(), out.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

std::optional<std::int64_t> parse_http_date(std::string_view field) noexcept {
  if (field.size() > 64) return std::nullopt;
  const std::string_view s = trim_ows(field);
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
    return std::nullopt;
  bool day_name = false;
  for (std::string_view d : day_names) day_name = day_name || s.substr(0, 3) == d;
  int month = 0;
  for (int i = 0; i < 12; ++i)
    if (s.substr(8, 3) == month_names[i]) month = i + 1;
  const int day = digits(s, 5, 2), year = digits(s, 12, 4);
  const int hour = digits(s, 17, 2), minute = digits(s, 20, 2), second = digits(s, 23, 2);
  if (!day_name || month == 0 || day < 1 || year < 0 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 60)
    return std::nullopt;
  static constexpr int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > month_days[month - 1] || (month == 2 && day == 29 && !leap)) return std::nullopt;
  return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

TagMatch match_tag_list(std::string_view list, std::string_view etag, bool weak) noexcept {
  if (list.size() > max_tag_list) return TagMatch::malformed;
  bool ours_weak = false;
  std::string_view ours_rest = trim_ows(etag);
  const auto ours = take_tag(ours_rest, ours_weak);
  if (!ours || !ours_rest.empty()) return TagMatch::malformed;
  list = trim_ows(list);
  if (list == "*") return TagMatch::yes;  // the file exists
  bool any = false, match = false;
  for (;;) {
    while (!list.empty() && (is_ows(list.front()) || list.front() == ',')) list.remove_prefix(1);
    if (list.empty()) break;
    bool theirs_weak = false;
    const auto theirs = take_tag(list, theirs_weak);
    if (!theirs) return TagMatch::malformed;
    any = true;
    if (*theirs == *ours && (weak || (!theirs_weak && !ours_weak))) match = true;
    while (!list.empty() && is_ows(list.front())) list.remove_prefix(1);
    if (!list.empty() && list.front() != ',') return TagMatch::malformed;
  }
  if (!any) return TagMatch::malformed;
  return match ? TagMatch::yes : TagMatch::no;
}

void answer_conditional(const Request& request, int& status, Headers& headers,
                        std::string& body, std::unique_ptr<ByteSource>& file,
                        std::uint64_t file_size) {
  if (!file || status != 200) return;
  // The validators, for the whole file as it was opened (not a part a handler chose).
  const auto size = file->size_at_open();
  const auto mtime = file->modified_at_open();
  const auto offset = file->file_offset();
  if (size && mtime && *mtime >= 0 && *size == file_size && offset.value_or(0) == 0) {
    if (!headers.has("etag")) headers.set("ETag", file_etag(*mtime, *size));
    char date[32];
    const std::size_t n = format_http_date(*mtime, date);
    if (n != 0 && !headers.has("last-modified")) headers.set("Last-Modified", std::string(date, n));
  }
  if (request.method() != "GET" && request.method() != "HEAD") return;
  const Headers& asked = request.headers();
  if (asked.has("if-none-match")) {
    // A malformed list is ignored, and If-Modified-Since with it (RFC 9110 13.2.2).
    const auto etag = headers.get("etag");
    if (!etag || none_match(asked, *etag) != TagMatch::yes) return;
  } else if (asked.count("if-modified-since") == 1) {
    const auto since = parse_http_date(*asked.get("if-modified-since"));
    const auto modified = headers.get("last-modified");
    const auto last = modified ? parse_http_date(*modified) : std::nullopt;
    // A date in the future is no answer for a cache to keep (RFC 9110 13.1.3).
    if (!since || !last || *since > static_cast<std::int64_t>(std::time(nullptr)) ||
        *last > *since)
      return;
  } else {
    return;
  }
  // 304 (RFC 9110 15.4.5): the validators, Date, Cache-Control, Vary... stay; the body
  // and the fields that describe it go (nginx drops the same ones).
  status = 304;
  body.clear();
  file.reset();
  for (std::string_view name : {"content-type", "content-length", "content-encoding",
                                "content-range", "accept-ranges"})
    headers.remove(name);
}

bool if_range_holds(std::string_view value, const Headers& response_headers) noexcept {
  value = trim_ows(value);
  if (value.starts_with('"') || value.starts_with("W/")) {  // one entity-tag, compared strongly
    bool weak = false, ours_weak = false;
    const auto theirs = take_tag(value, weak);
    const auto etag = response_headers.get("etag");
    if (!theirs || weak || !value.empty() || !etag) return false;
    std::string_view rest = trim_ows(*etag);
    const auto ours = take_tag(rest, ours_weak);
    return ours && !ours_weak && rest.empty() && *ours == *theirs;
  }
  const auto date = parse_http_date(value);
  const auto modified = response_headers.get("last-modified");
  const auto last = modified ? parse_http_date(*modified) : std::nullopt;
  return date && last && *date == *last &&
         *last < static_cast<std::int64_t>(std::time(nullptr));  // strong: a second old
}

}  // namespace torsion::web::detail
