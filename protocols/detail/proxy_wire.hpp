#pragma once
// The PROXY protocol's wire constants and its CRC32c, shared by the parser
// (proxy_protocol.cpp) and the writer (proxy_header_writer.cpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace torsion::detail::proxy_wire {

inline constexpr std::string_view kV1Signature = "PROXY ";
inline constexpr std::array<char, 12> kV2Bytes{'\r', '\n', '\r', '\n', '\0', '\r',
                                               '\n', 'Q',  'U',  'I',  'T',  '\n'};
inline constexpr std::string_view kV2Signature(kV2Bytes.data(), kV2Bytes.size());
inline constexpr std::size_t kV2Fixed = 16;  // signature, version/command, family, length
inline constexpr std::size_t kV2MaxLength = kV2Fixed + 65535;
inline constexpr std::size_t kUnixPath = 108;  // each of the two Unix paths of a v2 header
inline constexpr std::size_t kUniqueIdMax = 128;

// CRC32c (Castagnoli, reflected polynomial 0x82F63B78), as RFC 4960 appendix B, by table.
inline constexpr std::array<std::uint32_t, 256> kCrc32cTable = [] {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}();

// Continues a CRC32c (in its inverted running form) over `bytes`.
inline std::uint32_t crc32c_update(std::uint32_t crc, std::string_view bytes) noexcept {
  for (const char ch : bytes)
    crc = kCrc32cTable[(crc ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (crc >> 8);
  return crc;
}

// The CRC32c of `header` with the 4 bytes at `field` taken as zeros (PP2_TYPE_CRC32C).
inline std::uint32_t crc32c_with_zeroed_field(std::string_view header, std::size_t field) noexcept {
  constexpr char zeros[4] = {};
  std::uint32_t crc = 0xffffffffu;
  crc = crc32c_update(crc, header.substr(0, field));
  crc = crc32c_update(crc, std::string_view(zeros, 4));
  crc = crc32c_update(crc, header.substr(field + 4));
  return crc ^ 0xffffffffu;
}

}  // namespace torsion::detail::proxy_wire
