#include <zlib.h>

#include <algorithm>
#include <stdexcept>

#include "web/detail/ws_deflate.hpp"

namespace torsion::web::detail {

namespace {

constexpr std::string_view kName = "permessage-deflate";
constexpr std::string_view kTail("\x00\x00\xff\xff", 4);

bool tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void skip_ows(std::string_view s, std::size_t& at) {
  while (at < s.size() && (s[at] == ' ' || s[at] == '\t')) ++at;
}

bool take_token(std::string_view s, std::size_t& at, std::string& out) {
  const std::size_t start = at;
  while (at < s.size() && tchar(s[at])) ++at;
  out.assign(s.substr(start, at - start));
  return at > start;
}

bool take_quoted(std::string_view s, std::size_t& at, std::string& out) {
  out.clear();
  ++at;  // the opening quote
  while (at < s.size() && s[at] != '"') {
    if (s[at] == '\\') {
      if (++at == s.size()) return false;
    }
    out.push_back(s[at++]);
  }
  if (at == s.size()) return false;
  ++at;
  return !out.empty();
}

bool parse_field(std::string_view s, std::vector<WsExtension>& out) {
  std::size_t at = 0;
  for (;;) {
    skip_ows(s, at);
    if (at == s.size()) return true;  // empty elements are allowed in a #list
    if (s[at] == ',') {
      ++at;
      continue;
    }
    WsExtension ext;
    if (!take_token(s, at, ext.name)) return false;
    for (;;) {
      skip_ows(s, at);
      if (at == s.size() || s[at] == ',') break;
      if (s[at] != ';') return false;
      ++at;
      skip_ows(s, at);
      std::string name;
      if (!take_token(s, at, name)) return false;
      skip_ows(s, at);
      std::optional<std::string> value;
      if (at < s.size() && s[at] == '=') {
        ++at;
        skip_ows(s, at);
        std::string v;
        if (at < s.size() && s[at] == '"' ? !take_quoted(s, at, v) : !take_token(s, at, v))
          return false;
        value = std::move(v);
      }
      ext.params.emplace_back(std::move(name), std::move(value));
    }
    out.push_back(std::move(ext));
  }
}

// A window size parameter's value: 8..15, digits only.
std::optional<int> window_value(const std::string& v) {
  if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
  return std::nullopt;
}

// The parameters of one permessage-deflate element, checked: each at most once, the
// four known names only, values where (and only where) they belong.
struct Params {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;
  bool client_max_window_bits = false;  // present
  std::optional<int> client_max_window_bits_value;
};

// `response`: the server's answer, where client_max_window_bits needs a value.
std::string read_params(const WsExtension& ext, bool response, Params& p) {
  bool seen[4] = {};
  for (const auto& [name, value] : ext.params) {
    int which;
    if (name == "server_no_context_takeover") which = 0;
    else if (name == "client_no_context_takeover") which = 1;
    else if (name == "server_max_window_bits") which = 2;
    else if (name == "client_max_window_bits") which = 3;
    else return "unknown parameter " + name;
    if (seen[which]) return "parameter " + name + " given twice";
    seen[which] = true;
    if (which < 2) {
      if (value) return "parameter " + name + " with a value";
      (which == 0 ? p.server_no_context_takeover : p.client_no_context_takeover) = true;
      continue;
    }
    std::optional<int> bits;
    if (value && !(bits = window_value(*value))) return "parameter " + name + " outside 8..15";
    if (which == 2) {
      if (!bits) return "parameter " + name + " without a value";
      p.server_max_window_bits = bits;
    } else {
      if (!bits && response) return "parameter " + name + " without a value";
      p.client_max_window_bits = true;
      p.client_max_window_bits_value = bits;
    }
  }
  return {};
}

// zlib cannot produce a window of 256 bytes (it makes windowBits 8 into 9): a side held
// to 8 sends its messages uncompressed, which RFC 7692 allows.
int usable_bits(int bits) { return bits <= 8 ? 0 : bits; }

}  // namespace

bool parse_ws_extensions(const Headers& headers, std::vector<WsExtension>& out) {
  for (const auto& [field, value] : headers.fields())
    if (iequals(field, "Sec-WebSocket-Extensions") && !parse_field(value, out)) return false;
  return true;
}

void check_deflate_options(const WsDeflateOptions& o, const char* who) {
  auto bad = [who](const std::string& what) {
    throw std::invalid_argument(std::string(who) + ": WsDeflateOptions::" + what);
  };
  if (o.window_bits < 9 || o.window_bits > 15) bad("window_bits must be 9..15");
  if (o.peer_window_bits < 9 || o.peer_window_bits > 15) bad("peer_window_bits must be 9..15");
  if (o.mem_level < 1 || o.mem_level > 9) bad("mem_level must be 1..9");
  if (o.level < -1 || o.level > 9) bad("level must be -1..9");
}

std::optional<std::string> ws_deflate_accept(const Headers& request, const WsDeflateOptions& options,
                                             WsDeflateAgreement& agreed) {
  if (!options.enabled) return std::nullopt;
  std::vector<WsExtension> offers;
  if (!parse_ws_extensions(request, offers)) return std::nullopt;
  for (const auto& offer : offers) {
    Params p;
    if (offer.name != kName || !read_params(offer, false, p).empty()) continue;  // the next one
    WsDeflateAgreement a;
    a.compress_reset = p.server_no_context_takeover || options.no_context_takeover;
    a.decompress_reset = p.client_no_context_takeover || options.peer_no_context_takeover;
    const int bits = std::min(options.window_bits, p.server_max_window_bits.value_or(15));
    a.compress_bits = usable_bits(bits);
    std::string answer(kName);
    if (a.compress_reset) answer += "; server_no_context_takeover";
    if (a.decompress_reset) answer += "; client_no_context_takeover";
    if (p.server_max_window_bits) answer += "; server_max_window_bits=" + std::to_string(bits);
    if (p.client_max_window_bits) {
      const int peer = std::min(options.peer_window_bits, p.client_max_window_bits_value.value_or(15));
      if (peer < 15) answer += "; client_max_window_bits=" + std::to_string(peer);
    }
    agreed = a;
    return answer;
  }
  return std::nullopt;
}

std::string ws_deflate_offer(const WsDeflateOptions& options) {
  if (!options.enabled) return {};
  std::string offer(kName);
  offer += "; client_max_window_bits";
  if (options.peer_window_bits < 15)
    offer += "; server_max_window_bits=" + std::to_string(options.peer_window_bits);
  if (options.no_context_takeover) offer += "; client_no_context_takeover";
  if (options.peer_no_context_takeover) offer += "; server_no_context_takeover";
  return offer;
}

std::string ws_deflate_check(const Headers& response, const WsDeflateOptions& options,
                             WsDeflateAgreement& agreed, bool& accepted) {
  accepted = false;
  std::vector<WsExtension> answer;
  if (!parse_ws_extensions(response, answer)) return "a malformed Sec-WebSocket-Extensions";
  if (answer.empty()) return {};
  if (!options.enabled || answer.size() != 1 || answer[0].name != kName)
    return "an extension that was not offered";
  Params p;
  if (std::string why = read_params(answer[0], true, p); !why.empty())
    return "permessage-deflate with " + why;
  if (options.peer_window_bits < 15 &&
      p.server_max_window_bits.value_or(15) > options.peer_window_bits)
    return "permessage-deflate without the server_max_window_bits asked for";
  if (options.peer_no_context_takeover && !p.server_no_context_takeover)
    return "permessage-deflate without the server_no_context_takeover asked for";
  WsDeflateAgreement a;
  a.compress_reset = p.client_no_context_takeover || options.no_context_takeover;
  a.decompress_reset = p.server_no_context_takeover;
  a.compress_bits = usable_bits(std::min(options.window_bits, p.client_max_window_bits_value.value_or(15)));
  agreed = a;
  accepted = true;
  return {};
}

// --- WsDeflater ---------------------------------------------------------------------

struct WsDeflater::State {
  z_stream z{};
};

WsDeflater::WsDeflater(int window_bits, int level, int mem_level, bool reset)
    : s_(std::make_unique<State>()), reset_(reset) {
  if (deflateInit2(&s_->z, level, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::bad_alloc();
}

WsDeflater::~WsDeflater() { deflateEnd(&s_->z); }

void WsDeflater::compress(std::string_view message, std::string& out) {
  z_stream& z = s_->z;
  out.clear();
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  z.avail_in = static_cast<uInt>(message.size());
  std::size_t chunk = message.size() / 2 + 64;
  for (;;) {
    const std::size_t used = out.size();
    out.resize(used + chunk);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    z.avail_out = static_cast<uInt>(chunk);
    deflate(&z, Z_SYNC_FLUSH);  // cannot fail on a valid stream with room to write
    out.resize(used + chunk - z.avail_out);
    if (z.avail_out != 0) break;
    chunk = std::min<std::size_t>(chunk * 2, 1u << 30);
  }
  if (out.size() >= 4 && std::string_view(out).substr(out.size() - 4) == kTail) out.resize(out.size() - 4);
  if (reset_) deflateReset(&z);
}

// --- WsInflater ---------------------------------------------------------------------

struct WsInflater::State {
  z_stream z{};
};

WsInflater::WsInflater(bool reset) : s_(std::make_unique<State>()), reset_(reset) {
  if (inflateInit2(&s_->z, -15) != Z_OK) throw std::bad_alloc();
}

WsInflater::~WsInflater() { inflateEnd(&s_->z); }

WsInflater::Result WsInflater::run(std::string_view piece, std::string& out, std::uint64_t limit) {
  z_stream& z = s_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
  z.avail_in = static_cast<uInt>(piece.size());
  char buf[16 * 1024];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    const int r = inflate(&z, Z_SYNC_FLUSH);
    const std::size_t made = sizeof buf - z.avail_out;
    if (made > 0) {
      if (out.size() + made > limit) return Result::too_big;
      out.append(buf, made);
    }
    if (r == Z_STREAM_END) {  // a final block (BFINAL): what follows starts a new stream
      inflateReset(&z);
      if (z.avail_in == 0) return Result::ok;
      continue;
    }
    if (r == Z_BUF_ERROR) return Result::ok;  // all input used, nothing more to make
    if (r != Z_OK) return Result::corrupt;
    if (z.avail_in == 0 && z.avail_out != 0) return Result::ok;
  }
}

WsInflater::Result WsInflater::feed(std::string_view piece, std::string& out, std::uint64_t limit) {
  // zlib counts in uInt: a larger piece goes in parts.
  constexpr std::size_t kMax = 1u << 30;
  while (piece.size() > kMax) {
    if (Result r = run(piece.substr(0, kMax), out, limit); r != Result::ok) return r;
    piece.remove_prefix(kMax);
  }
  return run(piece, out, limit);
}

WsInflater::Result WsInflater::finish(std::string& out, std::uint64_t limit) {
  const Result r = run(kTail, out, limit);
  if (reset_ && r == Result::ok) inflateReset(&s_->z);
  return r;
}

}  // namespace torsion::web::detail
