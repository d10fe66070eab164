#pragma once
/// \file
/// Range requests (RFC 9110 section 14): the Range field's parser, which the server uses
/// for file responses and which a handler may use for bodies of its own.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace torsion::web {

/// How much of a Range field resolve_byte_range looks at; a field past either limit is
/// ignored (the whole representation is sent).
struct RangeLimits {
  /// The field value's length, in bytes.
  std::size_t max_field = 1024;
  /// The number of range-specs (list elements, empty ones included).
  std::size_t max_ranges = 16;
};

/// What a Range field asks of a representation of a known size.
struct ByteRange {
  /// The answer it calls for.
  enum class Kind : std::uint8_t {
    whole,          ///< no usable range: send the whole representation (200)
    partial,        ///< one range, bytes first..last: 206 Partial Content
    unsatisfiable,  ///< no range-spec overlaps the representation: 416
  };
  Kind kind = Kind::whole;
  std::uint64_t first = 0;  ///< partial: the offset of the first byte sent
  std::uint64_t last = 0;   ///< partial: the offset of the last byte sent (inclusive)
  /// partial: how many bytes are sent.
  std::uint64_t length() const noexcept { return last - first + 1; }
};

/// Resolves a Range field value (`bytes=0-99`, `bytes=500-`, `bytes=-200`; RFC 9110
/// 14.1.1 and 14.2) against a representation of `size` bytes. Strict: the unit is
/// `bytes` (any case), no whitespace inside a range-spec, optional spaces and tabs around
/// the commas and at the ends, empty list elements allowed; a syntax error, another
/// unit, a last-pos below its first-pos, or a field past `limits` gives Kind::whole,
/// never an error. A range-spec is satisfiable when its first-pos is below `size` (a
/// last-pos past the end is cut to it) or, for a suffix (`-N`), when N is not 0 (the
/// last N bytes, or all of them); the unsatisfiable ones are dropped, and none left is
/// Kind::unsatisfiable. Several satisfiable ranges that overlap or touch are coalesced
/// into one; ranges that remain apart give Kind::whole (multipart/byteranges is not
/// produced). A representation of 0 bytes has no byte to send: Kind::whole whenever a
/// suffix asks for it, Kind::unsatisfiable for first-pos ranges alone.
ByteRange resolve_byte_range(std::string_view field, std::uint64_t size, RangeLimits limits = {});

}  // namespace torsion::web
