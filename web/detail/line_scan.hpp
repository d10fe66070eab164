#pragma once
// Private: taking CRLF-terminated lines from a byte stream cut anywhere, shared by the
// head parser and the chunked decoder. Only an unfinished line is copied (into `buffer`),
// and never more than `limit` bytes of it.

#include <cstddef>
#include <string>
#include <string_view>

namespace torsion::web::detail {

enum class LineResult { complete, partial, too_long, bare_lf };

// Takes bytes from data[used..] up to and including the next LF. On `complete`, `line`
// is the line without its CRLF (a view into `data` or into `buffer`, valid until buffer
// changes: the caller clears `buffer` once done with it). On `partial` every remaining
// byte went into `buffer`. `too_long` when the line (not counting a final CR) exceeds
// `limit`; `bare_lf` when an LF has no CR before it (`line` is then the bytes before the
// LF, for callers that check a byte budget before the verdict); on those two `used` does
// not move.
inline LineResult take_line(std::string& buffer, std::string_view data, std::size_t& used,
                            std::size_t limit, std::string_view& line) {
  const std::string_view rest = data.substr(used);
  const std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) {
    std::size_t length = buffer.size() + rest.size();
    const char last = rest.empty() ? (buffer.empty() ? '\0' : buffer.back()) : rest.back();
    if (length > 0 && last == '\r') --length;
    if (length > limit) return LineResult::too_long;
    buffer.append(rest);
    used = data.size();
    return LineResult::partial;
  }
  std::string_view raw;
  if (buffer.empty()) {
    raw = rest.substr(0, lf);
  } else {
    if (buffer.size() + lf > limit + 1) return LineResult::too_long;
    buffer.append(rest.substr(0, lf));
    raw = buffer;
  }
  // On a refusal `used` stays where it was, however the input was cut.
  if (raw.empty() || raw.back() != '\r') {
    // A line longer than the limit is too long whatever ends it.
    if (raw.size() > limit) return LineResult::too_long;
    line = raw;  // so that the caller can count its bytes (line.size() + 1) first
    return LineResult::bare_lf;
  }
  raw.remove_suffix(1);
  if (raw.size() > limit) return LineResult::too_long;
  used += lf + 1;
  line = raw;
  return LineResult::complete;
}

}  // namespace torsion::web::detail
