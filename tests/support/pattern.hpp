#pragma once
// A byte stream that shows loss, duplication and reordering: byte i is table[i % kPeriod],
// with a prime period so that no chunk size lines up with it. Checking needs no copy of
// the stream, so tests can move hundreds of MiB with flat memory.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace torsion::test {

class Pattern {
 public:
  static constexpr std::size_t kPeriod = 1'000'003;

  Pattern() : table_(2 * kPeriod + kMaxSlice, '\0') {
    std::uint32_t x = 2463534242u;
    for (std::size_t i = 0; i < kPeriod; ++i) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      table_[i] = static_cast<char>(x & 0xff);
    }
    for (std::size_t i = kPeriod; i < table_.size(); ++i) table_[i] = table_[i % kPeriod];
  }

  // The `size` bytes at stream offset `offset` (size <= kMaxSlice), without copying.
  std::string_view slice(std::uint64_t offset, std::size_t size) const {
    return std::string_view(table_).substr(static_cast<std::size_t>(offset % kPeriod), size);
  }
  // A copy of the first `size` bytes.
  std::string bytes(std::size_t size) const {
    std::string s;
    s.reserve(size);
    for (std::uint64_t off = 0; off < size; off += kMaxSlice)
      s.append(slice(off, std::min<std::size_t>(kMaxSlice, size - off)));
    return s;
  }
  // True if `data` is what the stream holds at `offset`.
  bool matches(std::uint64_t offset, std::string_view data) const {
    while (!data.empty()) {
      const std::size_t n = std::min(data.size(), kMaxSlice);
      if (std::memcmp(slice(offset, n).data(), data.data(), n) != 0) return false;
      data.remove_prefix(n), offset += n;
    }
    return true;
  }

  static constexpr std::size_t kMaxSlice = 1024 * 1024;

 private:
  std::string table_;
};

// One shared instance (building the table takes a few milliseconds).
inline const Pattern& pattern_stream() {
  static const Pattern p;
  return p;
}

}  // namespace torsion::test
