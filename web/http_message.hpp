#pragma once
/// \file
/// The pieces of an HTTP/1.1 message that the parser, the server and the client share:
/// header fields, the parsed head, the limits every parser enforces and the error a
/// malformed or over-large message produces (RFC 9110, RFC 9112).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace torsion::web {

/// True if `a` and `b` are equal ignoring ASCII case (header names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Header fields in the order received (or to be sent). Names keep their spelling and
/// compare case-insensitively; a name may appear more than once.
class Headers {
 public:
  /// One field.
  using Field = std::pair<std::string, std::string>;
  /// The value of the first field called `name`, or nullopt. The view is valid until the
  /// Headers change.
  std::optional<std::string_view> get(std::string_view name) const;
  /// True if a field called `name` is present.
  bool has(std::string_view name) const { return get(name).has_value(); }
  /// How many fields are called `name`.
  std::size_t count(std::string_view name) const;
  /// Appends a field (kept if one of that name exists).
  void add(std::string name, std::string value);
  /// Replaces every field called `name` by one with `value`.
  void set(std::string_view name, std::string value);
  /// Removes every field called `name`; returns how many.
  std::size_t remove(std::string_view name);
  /// True if a comma-separated field called `name` lists `token` (case-insensitive), as
  /// Connection: keep-alive, Upgrade.
  bool has_token(std::string_view name, std::string_view token) const;
  /// The fields, in order.
  const std::vector<Field>& fields() const noexcept { return fields_; }
  /// Number of fields.
  std::size_t size() const noexcept { return fields_.size(); }
  /// True if there is no field.
  bool empty() const noexcept { return fields_.empty(); }
  /// Removes every field.
  void clear() noexcept { fields_.clear(); }

 private:
  std::vector<Field> fields_;
};

/// Every length an HTTP parser accepts is bounded by one of these; each overflow has a
/// defined outcome (the status code named below, then the connection is closed).
struct HttpLimits {
  /// The request line (method, target, version) or the status line: 414 URI Too Long for
  /// a request (400 for a response's status line).
  std::size_t max_start_line = 8 * 1024;
  /// One header field line: 431 Request Header Fields Too Large.
  std::size_t max_field_line = 8 * 1024;
  /// The whole head (start line and every field, with line ends) and, separately, the
  /// whole trailer section of a chunked body: 431.
  std::size_t max_head = 64 * 1024;
  /// Number of header fields (and of trailer fields): 431.
  std::size_t max_fields = 100;
  /// The body, after chunked decoding: 413 Content Too Large (checked against
  /// Content-Length before any body byte is read).
  std::uint64_t max_body = 8 * 1024 * 1024;
  /// One chunk-size line, with its extensions: 400.
  std::size_t max_chunk_line = 1024;
};

/// Why a message was refused: the HTTP status a server answers with (400, 413, 414, 431,
/// 501, 505) and a short English explanation. A client parsing a response gets the same
/// values (the status then only classifies the fault).
class HttpError : public std::runtime_error {
 public:
  /// `status` is the HTTP status that describes the fault.
  HttpError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  /// The status code (400, 413, 414, 431, 501, 505...).
  int status() const noexcept { return status_; }

 private:
  int status_;
};

/// How the body of a message is delimited (RFC 9112 section 6.3).
enum class BodyKind {
  none,          ///< no body (a request without Content-Length or Transfer-Encoding,
                 ///< a response to HEAD, 1xx, 204, 304)
  length,        ///< Content-Length bytes
  chunked,       ///< chunked transfer coding, with optional trailers
  until_close,   ///< a response read until the connection closes
};

/// A parsed start line and header section.
struct HttpHead {
  std::string method;      ///< request: the method, as sent (case-sensitive token)
  std::string target;      ///< request: the request-target, as sent
  int status = 0;          ///< response: the status code (100..999)
  std::string reason;      ///< response: the reason phrase (may be empty)
  int version_minor = 1;   ///< 0 for HTTP/1.0, 1 for HTTP/1.1
  Headers headers;         ///< the header fields, in order
  BodyKind body = BodyKind::none;   ///< how the body is delimited
  std::uint64_t content_length = 0; ///< the body size when body == BodyKind::length
  bool keep_alive = true;  ///< the connection persists after this message (version and
                           ///< Connection header considered)
  bool expect_continue = false;  ///< request: Expect: 100-continue
  bool upgrade = false;    ///< Connection: upgrade with an Upgrade field
};

/// The reason phrase registered for `status`, or "Unknown" (RFC 9110 section 15).
std::string_view reason_phrase(int status) noexcept;

}  // namespace torsion::web
