#pragma once
// Private: the optional whitespace (OWS, RFC 9110 5.6.3) around field values and list
// members, for the parsers of single fields (Range, If-None-Match, HTTP-dates).

#include <string_view>

namespace torsion::web::detail {

inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace torsion::web::detail
