#include "protocols/wire.hpp"

#include <array>
#include <utility>

namespace torsion {

void Echo::data_received(std::string_view data) { transport().write(data); }

void Discard::data_received(std::string_view data) { (void)data; }

// --- Chargen -------------------------------------------------------------------------

namespace {
constexpr std::size_t kCycle = 95;  // printable ASCII, ' ' to '~'
constexpr std::size_t kLineChars = 72;
}  // namespace

std::string Chargen::line(std::size_t n) {
  std::string out(kLineSize, '\0');
  for (std::size_t k = 0; k < kLineChars; ++k) out[k] = static_cast<char>(' ' + (n + k) % kCycle);
  out[kLineChars] = '\r';
  out[kLineChars + 1] = '\n';
  return out;
}

void Chargen::connection_made() { transport().register_producer(*this, false); }

void Chargen::data_received(std::string_view data) { (void)data; }

void Chargen::connection_lost(const Reason& reason) {
  (void)reason;
  stopped_ = true;
}

void Chargen::resume_producing() {
  if (stopped_ || !has_transport() || !transport().connected()) return;
  chunk_.resize(kLinesPerChunk * kLineSize);
  for (std::size_t l = 0; l < kLinesPerChunk; ++l, ++line_) {
    char* out = chunk_.data() + l * kLineSize;
    for (std::size_t k = 0; k < kLineChars; ++k)
      out[k] = static_cast<char>(' ' + (line_ + k) % kCycle);
    out[kLineChars] = '\r';
    out[kLineChars + 1] = '\n';
  }
  transport().write(std::string_view(chunk_));
}

// --- Daytime and QOTD ----------------------------------------------------------------

Daytime::Daytime(std::function<std::time_t()> clock) : clock_(std::move(clock)) {}

std::string Daytime::format(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 64> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%a %b %e %H:%M:%S %Y\r\n", &tm);
  return std::string(buf.data(), n);
}

void Daytime::connection_made() {
  transport().write(format(clock_ ? clock_() : std::time(nullptr)));
  transport().lose_connection();
}

Qotd::Qotd(std::string quote) : quote_(std::move(quote)) {}

void Qotd::connection_made() {
  const std::array<std::string_view, 2> parts{quote_, "\r\n"};
  transport().write_sequence(parts);
  transport().lose_connection();
}

}  // namespace torsion
