#pragma once
// Private: conditional requests (RFC 9110 section 13) on file responses
// (web/conditional.cpp): the validators a file carries, If-None-Match and
// If-Modified-Since (304), If-Range; and the HTTP-date both ways, which the Date field
// (http_date) shares.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "web/http_server.hpp"

namespace torsion::web::detail {

// The longest If-None-Match value looked at (all its fields together); past it the
// field is ignored.
inline constexpr std::size_t max_tag_list = 2048;

// Writes the IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes and a NUL) for
// `seconds` since the epoch into `out`; returns its length, 0 for a time outside the
// years 1970..9999 or an `out` of fewer than 30 bytes.
std::size_t format_http_date(std::int64_t seconds, std::span<char> out) noexcept;

// An IMF-fixdate (RFC 9110 5.6.7) as seconds since the epoch, spaces and tabs around it
// allowed; nullopt for anything else (the obsolete RFC 850 and asctime forms included),
// a field over 64 bytes, or a date that does not exist.
std::optional<std::int64_t> parse_http_date(std::string_view field) noexcept;

// What an entity-tag list field (If-None-Match, If-Match: "*" or 1#entity-tag) says of
// `etag`.
enum class TagMatch : std::uint8_t { no, yes, malformed };
// Compares `etag` with every member of `list` (OWS around commas, empty elements
// allowed), weakly (W/ ignored on both sides) or strongly (equal and neither weak).
// A list over max_tag_list, a syntax error or an `etag` that is not an entity-tag give
// malformed, never an error.
TagMatch match_tag_list(std::string_view list, std::string_view etag, bool weak) noexcept;

// For a 200 whose body is a file: adds ETag ("<mtime hex>-<size hex>", as nginx) and
// Last-Modified from the file's fstat at open unless the handler set them, and, for GET
// and HEAD, answers If-None-Match (or, without it, If-Modified-Since) with 304 Not
// Modified: no body, no file, the representation's Content-* fields dropped.
void answer_conditional(const Request& request, int& status, Headers& headers,
                        std::string& body, std::unique_ptr<ByteSource>& file,
                        std::uint64_t file_size);

// If-Range (RFC 9110 13.1.5): true if `value` is an entity-tag that strongly matches the
// response's ETag, or an HTTP-date equal to its Last-Modified where that is a strong
// validator (at least a second before now).
bool if_range_holds(std::string_view value, const Headers& response_headers) noexcept;

}  // namespace torsion::web::detail
