#pragma once
// Private: splitting an http(s):// or ws(s):// URL into what a client connects to and the
// request-target it sends, shared by the HTTP and WebSocket clients.

#include <stdexcept>
#include <string>
#include <string_view>

namespace torsion::web::detail {

struct Target {
  bool tls = false;
  std::string host;
  int port = 80;
  std::string path;
};

inline Target parse_url(const std::string& url, std::string_view scheme, const char* who) {
  Target t;
  std::string_view rest(url);
  const std::string plain = std::string(scheme) + "://";
  const std::string secure = std::string(scheme) + "s://";
  if (rest.rfind(plain, 0) == 0) {
    rest.remove_prefix(plain.size());
  } else if (rest.rfind(secure, 0) == 0) {
#if defined(TORSION_WEB_TLS)
    rest.remove_prefix(secure.size());
    t.tls = true;
    t.port = 443;
#else
    throw std::invalid_argument(std::string(who) + ": '" + url + "' needs " + secure +
                                ", and torsion was built without OpenSSL");
#endif
  } else {
    throw std::invalid_argument(std::string(who) + ": '" + url + "' is not a " + plain + " or " +
                                secure + " URL");
  }
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  // A target that starts with its query ("http://h?q") gets the root path in front.
  // push_back, not = "/": g++ 12 at -O3 reports a false -Wrestrict on the assignment.
  if (slash == std::string_view::npos) {
    t.path.push_back('/');
  } else {
    if (rest[slash] == '?') t.path.push_back('/');
    t.path.append(rest.substr(slash));
  }
  if (authority.find('@') != std::string_view::npos)
    throw std::invalid_argument(std::string(who) + ": user information in '" + url + "' is not supported");
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument(std::string(who) + ": bad host in '" + url + "'");
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':')
      throw std::invalid_argument(std::string(who) + ": bad host in '" + url + "'");
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (!authority.empty()) {
    const std::string digits(authority.substr(1));
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument(std::string(who) + ": bad port in '" + url + "'");
    t.port = std::stoi(digits);
    if (t.port < 1 || t.port > 65535) throw std::invalid_argument(std::string(who) + ": bad port in '" + url + "'");
  }
  if (host.empty()) throw std::invalid_argument(std::string(who) + ": no host in '" + url + "'");
  t.host = std::string(host);
  for (char c : t.path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw std::invalid_argument(std::string(who) + ": the path of '" + url + "' has a space or control character");
  return t;
}

/// The Host field for t: the host ([bracketed] if IPv6), with the port unless default.
inline std::string host_field(const Target& t) {
  // Appended piece by piece: "[" + t.host trips g++ 12's -Wrestrict at -O3.
  std::string host;
  const bool literal_v6 = t.host.find(':') != std::string::npos;
  if (literal_v6) host += '[';
  host += t.host;
  if (literal_v6) host += ']';
  if (t.port != (t.tls ? 443 : 80)) {
    host += ':';
    host += std::to_string(t.port);
  }
  return host;
}

}  // namespace torsion::web::detail
