#pragma once
/// \file
/// Endpoint descriptions: the transport-neutral parser behind server_from_string and
/// client_from_string (transports/endpoints.hpp).
///
/// Syntax (Twisted's endpoint strings): parts separated by ':'; the first part is the
/// type; a part containing an unescaped '=' is a keyword parameter (key before the first
/// unescaped '=', value after it, later '=' belong to the value); any other part is a
/// positional argument. A backslash makes the next character literal, so IPv6 addresses
/// and paths can hold ':' and '=':
///
///     tcp:8080:interface=127.0.0.1:backlog=128
///     tcp:host=example.com:port=80:timeout=5
///     tcp:8080:interface=\:\:1
///
/// Limits: a description longer than kMaxEndpointDescription characters or with more than
/// kMaxEndpointParts parts is rejected with an EndpointError, before anything is parsed.

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace torsion {

/// The longest description accepted, in characters.
inline constexpr std::size_t kMaxEndpointDescription = 4096;
/// The most ':'-separated parts accepted (the type included).
inline constexpr std::size_t kMaxEndpointParts = 64;

/// A bad endpoint description. what() names the parameter and the offending value, e.g.
/// "endpoint 'tcp:port=x': parameter 'port' must be an integer in 0..65535, got 'x'".
/// A programming (or configuration) error, so an exception, derived from
/// std::invalid_argument.
class EndpointError : public std::invalid_argument {
 public:
  /// `parameter` is the parameter's name ("type" for the type, "description" for the
  /// whole string, "argument N" for a positional one that has no name).
  EndpointError(std::string parameter, std::string value, const std::string& message);
  /// The name of the bad parameter.
  const std::string& parameter() const noexcept { return parameter_; }
  /// The bad value, unescaped.
  const std::string& value() const noexcept { return value_; }

 private:
  std::string parameter_;
  std::string value_;
};

/// A parsed description: a type, positional arguments and keyword parameters, every
/// string already unescaped. The typed getters validate a value and throw an
/// EndpointError that names the parameter, the value and what was expected. Plain value
/// type; not tied to any reactor or transport.
class EndpointDescription {
 public:
  /// Parses `description`. Throws EndpointError for: an empty description or type, a
  /// dangling backslash at the end, an empty keyword ("=x"), a keyword given twice, or a
  /// description over the limits above.
  static EndpointDescription parse(std::string_view description);

  /// The type, e.g. "tcp" (as written; types are matched case-sensitively).
  const std::string& type() const noexcept { return type_; }
  /// Positional arguments after the type, in order.
  const std::vector<std::string>& positional() const noexcept { return positional_; }
  /// Keyword parameters in the order written.
  const std::vector<std::pair<std::string, std::string>>& keywords() const noexcept {
    return keywords_;
  }
  /// The description as given (escapes and all), for messages.
  const std::string& text() const noexcept { return text_; }

  /// Gives names to positional arguments: the i-th positional becomes keyword names[i].
  /// Throws EndpointError if there are more positionals than names, or if a parameter is
  /// given both ways. Call once, before the getters.
  void name_positional(std::initializer_list<std::string_view> names);

  /// Throws EndpointError naming the first parameter that is not in `known` (or the first
  /// positional argument left unnamed), so that typos are not silently ignored.
  void check_known(std::initializer_list<std::string_view> known) const;

  /// The value of keyword `key`, if given.
  std::optional<std::string> get(std::string_view key) const;
  /// The value of `key`; throws EndpointError ("required parameter 'key' is missing")
  /// when absent, or when empty and `allow_empty` is false.
  std::string required(std::string_view key, bool allow_empty = false) const;
  /// The value of `key`, or `fallback` when absent.
  std::string string(std::string_view key, std::string_view fallback) const;
  /// `key` as a decimal integer in [min, max], or `fallback` when absent. Throws
  /// EndpointError for anything else (signs, spaces, overflow, out of range).
  long integer(std::string_view key, long min, long max, long fallback) const;
  /// As integer(), but the parameter must be given.
  long required_integer(std::string_view key, long min, long max) const;
  /// `key` as a finite decimal number in [min, max], or `fallback` when absent.
  double number(std::string_view key, double min, double max, double fallback) const;
  /// `key` as a boolean ("true"/"false", "yes"/"no", "on"/"off", "1"/"0"), or `fallback`.
  bool boolean(std::string_view key, bool fallback) const;

  /// An EndpointError about `key` and `value` with the description named in the message:
  /// "endpoint 'TEXT': parameter 'KEY' DETAIL, got 'VALUE'". For endpoint parsers that
  /// check more than the getters do.
  EndpointError error(std::string_view key, std::string_view value, std::string_view detail) const;

 private:
  std::string text_;
  std::string type_;
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> keywords_;
};

/// Escapes `value` for use inside a description: a backslash before every ':', '=' and
/// '\'. escape("::1") == "\\:\\:1".
std::string escape_endpoint_value(std::string_view value);

}  // namespace torsion
