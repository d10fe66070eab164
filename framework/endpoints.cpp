#include "framework/endpoints.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace torsion {
namespace {

// For messages: the description, cut short when it is long.
std::string shown(std::string_view text) {
  constexpr std::size_t kShown = 80;
  if (text.size() <= kShown) return std::string(text);
  return std::string(text.substr(0, kShown)) + "...";
}

std::string describe(std::string_view text, std::string_view key, std::string_view value,
                     std::string_view detail) {
  std::string m = "endpoint '" + shown(text) + "': parameter '";
  m += key;
  m += "' ";
  m += detail;
  m += ", got '";
  m += shown(value);
  m += "'";
  return m;
}

}  // namespace

EndpointError::EndpointError(std::string parameter, std::string value, const std::string& message)
    : std::invalid_argument(message), parameter_(std::move(parameter)), value_(std::move(value)) {}

EndpointError EndpointDescription::error(std::string_view key, std::string_view value,
                                         std::string_view detail) const {
  return EndpointError(std::string(key), std::string(value), describe(text_, key, value, detail));
}

EndpointDescription EndpointDescription::parse(std::string_view description) {
  EndpointDescription d;
  if (description.size() > kMaxEndpointDescription)
    throw EndpointError("description", shown(description),
                        "endpoint description is " + std::to_string(description.size()) +
                            " characters long, more than the limit of " +
                            std::to_string(kMaxEndpointDescription) + ": '" + shown(description) +
                            "'");
  d.text_ = std::string(description);
  if (description.empty())
    throw EndpointError("description", "", "endpoint description is empty");

  // One pass: `key` collects a part up to its first unescaped '=', `value` after it.
  std::string key;
  std::string value;
  bool has_eq = false;
  std::size_t parts = 0;
  auto finish_part = [&] {
    if (++parts > kMaxEndpointParts)
      throw d.error("description", shown(description),
                    "has more than " + std::to_string(kMaxEndpointParts) + " ':'-separated parts");
    if (parts == 1) {
      if (has_eq) throw d.error("type", key + "=" + value, "must be a type name, not key=value");
      if (key.empty()) throw d.error("type", "", "must not be empty (e.g. 'tcp:8080')");
      d.type_ = std::move(key);
    } else if (has_eq) {
      if (key.empty()) throw d.error("(keyword)", "=" + value, "needs a name before '='");
      const bool duplicate = std::any_of(d.keywords_.begin(), d.keywords_.end(),
                                         [&](const auto& kv) { return kv.first == key; });
      if (duplicate) throw d.error(key, value, "is given twice");
      d.keywords_.emplace_back(std::move(key), std::move(value));
    } else {
      d.positional_.push_back(std::move(key));
    }
    key.clear();
    value.clear();
    has_eq = false;
  };

  for (std::size_t i = 0; i < description.size(); ++i) {
    char c = description[i];
    if (c == '\\') {
      if (i + 1 == description.size())
        throw d.error("description", description,
                      "ends with a lone backslash (write '\\\\' for a literal one)");
      c = description[++i];
      (has_eq ? value : key) += c;
    } else if (c == ':') {
      finish_part();
    } else if (c == '=' && !has_eq) {
      has_eq = true;
    } else {
      (has_eq ? value : key) += c;
    }
  }
  finish_part();
  return d;
}

void EndpointDescription::name_positional(std::initializer_list<std::string_view> names) {
  if (positional_.size() > names.size()) {
    const std::size_t extra = names.size();
    throw error("argument " + std::to_string(extra + 1), positional_[extra],
                "is one positional argument too many (" + type_ + " takes at most " +
                    std::to_string(names.size()) + ")");
  }
  std::size_t i = 0;
  for (auto name : names) {
    if (i == positional_.size()) break;
    if (get(name))
      throw error(name, positional_[i], "is given both by position and as '" +
                                            std::string(name) + "=...'");
    keywords_.emplace_back(std::string(name), std::move(positional_[i]));
    ++i;
  }
  positional_.clear();
}

void EndpointDescription::check_known(std::initializer_list<std::string_view> known) const {
  if (!positional_.empty())
    throw error("argument 1", positional_.front(), "is not expected by type '" + type_ + "'");
  for (const auto& [key, value] : keywords_) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (auto k : known) {
      if (!list.empty()) list += ", ";
      list += k;
    }
    throw error(key, value, "is unknown for type '" + type_ + "' (known: " + list + ")");
  }
}

std::optional<std::string> EndpointDescription::get(std::string_view key) const {
  for (const auto& [k, v] : keywords_)
    if (k == key) return v;
  return std::nullopt;
}

std::string EndpointDescription::required(std::string_view key, bool allow_empty) const {
  auto v = get(key);
  if (!v)
    throw EndpointError(std::string(key), "",
                        "endpoint '" + shown(text_) + "': required parameter '" +
                            std::string(key) + "' is missing");
  if (v->empty() && !allow_empty) throw error(key, *v, "must not be empty");
  return *v;
}

std::string EndpointDescription::string(std::string_view key, std::string_view fallback) const {
  auto v = get(key);
  return v ? *v : std::string(fallback);
}

long EndpointDescription::integer(std::string_view key, long min, long max, long fallback) const {
  auto v = get(key);
  if (!v) return fallback;
  long n = 0;
  const char* first = v->data();
  const char* last = first + v->size();
  const auto [end, ec] = std::from_chars(first, last, n);
  if (v->empty() || ec != std::errc() || end != last || n < min || n > max)
    throw error(key, *v,
                "must be an integer in " + std::to_string(min) + ".." + std::to_string(max));
  return n;
}

long EndpointDescription::required_integer(std::string_view key, long min, long max) const {
  required(key);
  return integer(key, min, max, 0);
}

double EndpointDescription::number(std::string_view key, double min, double max,
                                   double fallback) const {
  auto v = get(key);
  if (!v) return fallback;
  double x = 0;
  const char* first = v->data();
  const char* last = first + v->size();
  const auto [end, ec] = std::from_chars(first, last, x, std::chars_format::fixed);
  if (v->empty() || ec != std::errc() || end != last || !std::isfinite(x) || x < min || x > max) {
    char range[64];
    std::snprintf(range, sizeof range, "must be a number in %g..%g", min, max);
    throw error(key, *v, range);
  }
  return x;
}

bool EndpointDescription::boolean(std::string_view key, bool fallback) const {
  auto v = get(key);
  if (!v) return fallback;
  if (*v == "true" || *v == "yes" || *v == "on" || *v == "1") return true;
  if (*v == "false" || *v == "no" || *v == "off" || *v == "0") return false;
  throw error(key, *v, "must be a boolean (true/false, yes/no, on/off, 1/0)");
}

std::string escape_endpoint_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == ':' || c == '=' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace torsion
