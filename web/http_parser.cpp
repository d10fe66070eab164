#include "web/http_parser.hpp"

#include <algorithm>
#include <limits>

#include "web/detail/line_scan.hpp"

namespace torsion::web {

using detail::LineResult;
using detail::take_line;

namespace {

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_tchar(static_cast<unsigned char>(c));
  });
}

// field-vchar / SP / HTAB (obs-text allowed, as RFC 9110 section 5.5 permits).
bool is_field_char(unsigned char c) { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f); }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list.
template <class F>
void for_each_element(std::string_view list, F fn) {
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// "HTTP/1.1" -> 1, "HTTP/1.0" -> 0; -1 for another well-formed version (505), -2 for a
// malformed one (400).
int parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -2;
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(v[5]) || !digit(v[7])) return -2;
  if (v[5] != '1') return -1;
  if (v[7] == '0') return 0;
  if (v[7] == '1') return 1;
  return -1;
}

}  // namespace

bool parse_field_line(std::string_view line, Headers& headers, std::optional<HttpError>& error) {
  if (!line.empty() && is_ows(line.front())) {
    error.emplace(400, "obsolete line folding (a field line starting with white space)");
    return false;
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    error.emplace(400, "field line without a colon");
    return false;
  }
  const std::string_view name = line.substr(0, colon);
  if (!name.empty() && is_ows(name.back())) {
    error.emplace(400, "white space between a field name and its colon");
    return false;
  }
  if (!is_token(name)) {
    error.emplace(400, "invalid field name");
    return false;
  }
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!std::all_of(value.begin(), value.end(),
                   [](char c) { return is_field_char(static_cast<unsigned char>(c)); })) {
    error.emplace(400, "control character in a field value");
    return false;
  }
  headers.add(std::string(name), std::string(value));
  return true;
}

// --- ChunkedDecoder -------------------------------------------------------------------

ChunkedDecoder::Sink::~Sink() = default;

void ChunkedDecoder::reset() {
  state_ = State::size_line;
  line_.clear();
  remaining_ = 0;
  body_size_ = 0;
  trailer_bytes_ = 0;
  trailers_.clear();
  error_.reset();
}

bool ChunkedDecoder::fail(int status, const char* message) {
  error_.emplace(status, message);
  return false;
}

bool ChunkedDecoder::size_line_complete(std::string_view line) {
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size(); ++i) {
    const char c = line[i];
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      digit = (c | 0x20) - 'a' + 10;
    else
      break;
    if (size > (std::numeric_limits<std::uint64_t>::max() >> 4))
      return fail(400, "chunk size overflows");
    size = (size << 4) | static_cast<std::uint64_t>(digit);
  }
  if (i == 0) return fail(400, "chunk size is not a hexadecimal number");
  std::string_view rest = line.substr(i);
  while (!rest.empty() && is_ows(rest.front())) rest.remove_prefix(1);
  if (!rest.empty()) {
    if (rest.front() != ';') return fail(400, "invalid character after a chunk size");
    if (!std::all_of(rest.begin(), rest.end(),
                     [](char c) { return is_field_char(static_cast<unsigned char>(c)); }))
      return fail(400, "control character in a chunk extension");
  }
  if (size == 0) {
    state_ = State::trailer_line;
    return true;
  }
  if (size > limits_.max_body || body_size_ > limits_.max_body - size)
    return fail(413, "chunked body larger than the limit");
  remaining_ = size;
  state_ = State::data;
  return true;
}

bool ChunkedDecoder::trailer_line_complete(std::string_view line) {
  trailer_bytes_ += line.size() + 2;
  if (trailer_bytes_ > limits_.max_head) return fail(431, "trailer section too large");
  if (line.empty()) {
    state_ = State::done;
    return true;
  }
  if (trailers_.size() >= limits_.max_fields) return fail(431, "too many trailer fields");
  return parse_field_line(line, trailers_, error_);
}

std::size_t ChunkedDecoder::feed(std::string_view data, Sink& sink) {
  std::size_t used = 0;
  while (used < data.size() && !error_ && state_ != State::done) {
    switch (state_) {
      case State::size_line:
      case State::trailer_line: {
        const bool size_line = state_ == State::size_line;
        std::string_view line;
        const std::size_t limit = size_line ? limits_.max_chunk_line : limits_.max_field_line;
        switch (take_line(line_, data, used, limit, line)) {
          case LineResult::too_long:
            return fail(size_line ? 400 : 431,
                        size_line ? "chunk-size line too long" : "trailer field line too long"),
                   used;
          case LineResult::bare_lf:
            // As in the head: the trailers' byte budget first, whatever the cut.
            if (!size_line && trailer_bytes_ + line.size() + 1 > limits_.max_head)
              return fail(431, "trailer section too large"), used;
            return fail(400, "line ended by LF without CR"), used;
          case LineResult::partial:
            if (!size_line && trailer_bytes_ + line_.size() > limits_.max_head)
              fail(431, "trailer section too large");
            return used;
          case LineResult::complete:
            if (size_line)
              size_line_complete(line);
            else
              trailer_line_complete(line);
            line_.clear();
            break;
        }
        break;
      }
      case State::data: {
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, data.size() - used));
        remaining_ -= n;
        body_size_ += n;
        const std::string_view piece = data.substr(used, n);
        used += n;
        if (remaining_ == 0) state_ = State::data_cr;
        sink.chunk_data(piece);
        break;
      }
      case State::data_cr:
        if (data[used++] != '\r') return fail(400, "chunk data not followed by CRLF"), used;
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (data[used++] != '\n') return fail(400, "chunk data not followed by CRLF"), used;
        state_ = State::size_line;
        break;
      case State::done:
        break;
    }
  }
  return used;
}

// --- HttpParser ---------------------------------------------------------------------

HttpParser::Sink::~Sink() = default;
std::uint64_t HttpParser::Sink::body_limit(const HttpHead&, std::uint64_t limit) { return limit; }

struct HttpParser::ChunkSink final : ChunkedDecoder::Sink {
  HttpParser::Sink& sink;
  explicit ChunkSink(HttpParser::Sink& s) : sink(s) {}
  void chunk_data(std::string_view data) override { sink.body_data(data); }
};

HttpParser::HttpParser(Kind kind, Sink& sink, const HttpLimits& limits)
    : kind_(kind), sink_(sink), limits_(limits), chunked_(limits) {
  // A line can never be longer than the whole head may be.
  limits_.max_start_line = std::min(limits_.max_start_line, limits_.max_head);
  limits_.max_field_line = std::min(limits_.max_field_line, limits_.max_head);
  chunked_ = ChunkedDecoder(limits_);
}

void HttpParser::reset() {
  state_ = State::idle;
  line_.clear();
  head_ = HttpHead();
  head_bytes_ = 0;
  remaining_ = 0;
  body_size_ = 0;
  head_response_ = false;
  chunked_.reset();
  error_.reset();
}

void HttpParser::fail(int status, const char* message) { error_.emplace(status, message); }

bool HttpParser::parse_start_line(std::string_view line) {
  const std::size_t sp1 = line.find(' ');
  if (kind_ == Kind::request) {
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
      return fail(400, "malformed request line"), false;
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const int minor = parse_version(line.substr(sp2 + 1));
    if (!is_token(method)) return fail(400, "invalid method"), false;
    if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
          return c > 0x20 && c < 0x7f;
        }))
      return fail(400, "invalid request target"), false;
    if (minor == -2) return fail(400, "malformed HTTP version"), false;
    if (minor == -1) return fail(505, "HTTP version not supported"), false;
    head_.method = method;
    head_.target = target;
    head_.version_minor = minor;
    return true;
  }
  if (sp1 == std::string_view::npos) return fail(400, "malformed status line"), false;
  const int minor = parse_version(line.substr(0, sp1));
  if (minor == -2) return fail(400, "malformed HTTP version"), false;
  if (minor == -1) return fail(505, "HTTP version not supported"), false;
  const std::string_view rest = line.substr(sp1 + 1);
  if (rest.size() < 3 || (rest.size() > 3 && rest[3] != ' ') ||
      !std::all_of(rest.begin(), rest.begin() + 3, [](char c) { return c >= '0' && c <= '9'; }) ||
      rest[0] == '0')
    return fail(400, "malformed status code"), false;
  const std::string_view reason = rest.size() > 3 ? rest.substr(4) : std::string_view();
  if (!std::all_of(reason.begin(), reason.end(),
                   [](char c) { return is_field_char(static_cast<unsigned char>(c)); }))
    return fail(400, "control character in the reason phrase"), false;
  head_.status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  head_.reason = reason;
  head_.version_minor = minor;
  return true;
}

// Decides how the body is delimited (RFC 9112 section 6.3) and checks the fields that
// decide it. Returns false (with the error set) if the message must be refused.
bool HttpParser::frame_body() {
  HttpHead& h = head_;
  const Headers& fields = h.headers;
  const bool request = kind_ == Kind::request;
  if (request) {
    const std::size_t hosts = fields.count("host");
    if (hosts > 1) return fail(400, "more than one Host field"), false;
    if (hosts == 0 && h.version_minor == 1) return fail(400, "missing Host field"), false;
  }
  // Transfer-Encoding: only chunked is understood, and it must come last, once.
  bool has_te = false;
  bool chunked = false;
  for (const auto& [name, value] : fields.fields()) {
    if (!iequals(name, "transfer-encoding")) continue;
    has_te = true;
    bool bad = false;
    bool unknown = false;
    for_each_element(value, [&](std::string_view coding) {
      if (!iequals(coding, "chunked"))
        unknown = true;
      else if (chunked)
        bad = true;  // chunked twice
      else
        chunked = true;
    });
    if (unknown) return fail(501, "transfer coding not implemented"), false;
    if (bad) return fail(400, "chunked applied more than once"), false;
  }
  if (has_te && !chunked) return fail(400, "empty Transfer-Encoding"), false;
  if (has_te && request && h.version_minor == 0)
    return fail(400, "Transfer-Encoding in an HTTP/1.0 request"), false;
  // Content-Length: digits only; repeated values must all agree.
  std::optional<std::uint64_t> length;
  for (const auto& [name, value] : fields.fields()) {
    if (!iequals(name, "content-length")) continue;
    bool ok = true;
    bool any = false;
    for_each_element(value, [&](std::string_view element) {
      any = true;
      std::uint64_t n = 0;
      for (char c : element) {
        if (c < '0' || c > '9' || n > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) {
          ok = false;
          return;
        }
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (length && *length != n) ok = false;
      length = n;
    });
    if (!ok || !any) return fail(400, "invalid or conflicting Content-Length"), false;
  }
  if (has_te && length) return fail(400, "both Content-Length and Transfer-Encoding"), false;

  h.upgrade = fields.has_token("connection", "upgrade") && fields.has("upgrade");
  if (h.version_minor == 1)
    h.keep_alive = !fields.has_token("connection", "close");
  else
    h.keep_alive = fields.has_token("connection", "keep-alive") &&
                   !fields.has_token("connection", "close");
  if (request) {
    h.expect_continue = h.version_minor == 1 && iequals(fields.get("expect").value_or(""), "100-continue");
  }

  const bool no_body = !request && (head_response_ || h.status / 100 == 1 || h.status == 204 ||
                                    h.status == 304);
  body_limit_ = limits_.max_body;
  if (request ? (chunked || length) : !no_body) body_limit_ = sink_.body_limit(h, limits_.max_body);
  if (chunked) chunked_.set_max_body(body_limit_);
  if (no_body) {
    h.body = BodyKind::none;
  } else if (chunked) {
    h.body = BodyKind::chunked;
  } else if (length) {
    if (*length > body_limit_) return fail(413, "Content-Length larger than the limit"), false;
    h.body = *length == 0 ? BodyKind::none : BodyKind::length;
    h.content_length = *length;
  } else if (request) {
    h.body = BodyKind::none;
  } else {
    h.body = BodyKind::until_close;
    h.keep_alive = false;
  }
  return true;
}

void HttpParser::complete() {
  state_ = State::idle;
  head_response_ = false;
  static const Headers no_trailers;
  const bool chunked = chunked_.done();
  sink_.message_complete(chunked ? chunked_.trailers() : no_trailers);
  chunked_.reset();
}

std::size_t HttpParser::feed(std::string_view data) {
  std::size_t used = 0;
  yield_ = false;
  while (used < data.size() && !error_ && !yield_) {
    switch (state_) {
      case State::idle:
        if (kind_ == Kind::request && (data[used] == '\r' || data[used] == '\n')) {
          ++used;  // empty lines before a request line are ignored
          break;
        }
        head_ = HttpHead();
        head_bytes_ = 0;
        body_size_ = 0;
        state_ = State::start_line;
        break;
      case State::start_line:
      case State::fields: {
        const bool start = state_ == State::start_line;
        std::string_view line;
        const std::size_t limit = start ? limits_.max_start_line : limits_.max_field_line;
        const LineResult r = take_line(line_, data, used, limit, line);
        if (r == LineResult::too_long) {
          if (start)
            fail(kind_ == Kind::request ? 414 : 400,
                 kind_ == Kind::request ? "request line too long" : "status line too long");
          else
            fail(431, "header field line too long");
          return used;
        }
        // The head's byte budget is checked before the line's own syntax, so that a cut
        // inside the line (where only the budget can be checked) gives the same verdict.
        const std::size_t bytes = r == LineResult::partial  ? line_.size()
                                  : r == LineResult::bare_lf ? line.size() + 1
                                                             : line.size() + 2;
        if (head_bytes_ + bytes > limits_.max_head) {
          if (start)  // a start line alone past the head's budget is a start line too long
            fail(kind_ == Kind::request ? 414 : 400,
                 kind_ == Kind::request ? "request line too long" : "status line too long");
          else
            fail(431, "header section too large");
          return used;
        }
        if (r == LineResult::bare_lf) return fail(400, "line ended by LF without CR"), used;
        if (r == LineResult::partial) return used;
        head_bytes_ += bytes;
        if (start) {
          if (parse_start_line(line)) state_ = State::fields;
          line_.clear();
          break;
        }
        if (!line.empty()) {
          if (head_.headers.size() >= limits_.max_fields)
            fail(431, "too many header fields");
          else
            parse_field_line(line, head_.headers, error_);
          line_.clear();
          break;
        }
        line_.clear();
        if (!frame_body()) return used;
        switch (head_.body) {
          case BodyKind::none: state_ = State::idle; break;
          case BodyKind::length: state_ = State::body_length; break;
          case BodyKind::chunked: state_ = State::body_chunked; break;
          case BodyKind::until_close: state_ = State::body_until_close; break;
        }
        remaining_ = head_.content_length;
        {
          const bool done = state_ == State::idle;
          if (done) state_ = State::body_length;  // still in the message during the call
          sink_.head_received(head_);
          if (done) {
            complete();
            return used;
          }
        }
        break;
      }
      case State::body_length: {
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, data.size() - used));
        remaining_ -= n;
        const std::string_view piece = data.substr(used, n);
        used += n;
        sink_.body_data(piece);
        if (remaining_ == 0) {
          complete();
          return used;
        }
        break;
      }
      case State::body_chunked: {
        ChunkSink chunk_sink(sink_);
        used += chunked_.feed(data.substr(used), chunk_sink);
        if (chunked_.failed()) {
          error_ = chunked_.error();
          return used;
        }
        if (chunked_.done()) {
          complete();
          return used;
        }
        break;
      }
      case State::body_until_close: {
        // Up to the limit, then the refusal: the same bytes reach the sink however the
        // input is cut.
        std::string_view piece = data.substr(used);
        const bool over = piece.size() > body_limit_ - body_size_;
        if (over) piece = piece.substr(0, static_cast<std::size_t>(body_limit_ - body_size_));
        body_size_ += piece.size();
        used += piece.size();
        if (!piece.empty()) sink_.body_data(piece);
        if (over) return fail(413, "response body larger than the limit"), used;
        break;
      }
    }
  }
  return used;
}

bool HttpParser::feed_eof() {
  if (error_) return false;
  if (state_ == State::idle) return true;
  if (state_ == State::body_until_close) {
    complete();
    return true;
  }
  fail(400, "connection closed inside a message");
  return false;
}

}  // namespace torsion::web
