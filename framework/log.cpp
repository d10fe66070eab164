#include "framework/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace torsion {
namespace {

LogSink& sink() {
  static LogSink s;
  return s;
}
LogLevel min_level = LogLevel::info;

void default_sink(LogLevel level, std::string_view message) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  const std::string_view name = to_string(level);
  std::fprintf(stderr, "%s.%03dZ [%.*s] %.*s\n", stamp, static_cast<int>(ms),
               static_cast<int>(name.size()), name.data(), static_cast<int>(message.size()),
               message.data());
}

}  // namespace

void set_log_sink(LogSink s) { sink() = std::move(s); }
void set_log_level(LogLevel level) { min_level = level; }

void log(LogLevel level, std::string_view message) {
  if (level < min_level) return;
  if (sink())
    sink()(level, message);
  else
    default_sink(level, message);
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "?";
}

}  // namespace torsion
