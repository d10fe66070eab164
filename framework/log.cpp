#include "framework/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace torsion {
namespace {

LogEventSink& sink() {
  static LogEventSink s;
  return s;
}
std::atomic<LogLevel> min_level{LogLevel::info};
std::atomic<std::uint64_t> last_connection_id{0};

void default_sink(const LogEvent& event) {
  const std::string record = format_log_record(event);
  // One fprintf per event, so that lines from several threads do not interleave.
  std::fprintf(stderr, "%s\n", record.c_str());
}

void emit(const LogEvent& event) {
  if (event.level < min_level.load(std::memory_order_relaxed)) return;
  if (sink())
    sink()(event);
  else
    default_sink(event);
}

}  // namespace

void set_log_sink(LogSink s) {
  if (!s) {
    sink() = nullptr;
    return;
  }
  sink() = [s = std::move(s)](const LogEvent& event) {
    if (event.context)
      s(event.level, format_log_line(event));
    else
      s(event.level, event.message);  // nothing to add: no copy
  };
}

void set_log_event_sink(LogEventSink s) { sink() = std::move(s); }

void set_log_level(LogLevel level) noexcept { min_level.store(level, std::memory_order_relaxed); }

LogLevel log_level() noexcept { return min_level.load(std::memory_order_relaxed); }

bool log_enabled(LogLevel level) noexcept { return level >= log_level(); }

void log(LogLevel level, std::string_view message) { emit(LogEvent{level, message, nullptr}); }

void log(LogLevel level, const LogContext& context, std::string_view message) {
  emit(LogEvent{level, message, &context});
}

std::uint64_t next_connection_id() noexcept {
  return last_connection_id.fetch_add(1, std::memory_order_relaxed) + 1;
}

std::string format_log_line(const LogEvent& event) {
  if (!event.context) return std::string(event.message);
  const LogContext& c = *event.context;
  std::string line;
  if (c.connection_id != 0) line += "conn " + std::to_string(c.connection_id);
  const bool has_host = c.host.family() != Address::Family::none;
  const bool has_peer = c.peer.family() != Address::Family::none;
  if (has_host) {
    if (!line.empty()) line += ' ';
    line += c.host.to_string();
  }
  if (has_peer) {
    line += line.empty() ? "<- " : " <- ";
    line += c.peer.to_string();
  }
  if (!line.empty()) line += ": ";
  line += event.message;
  return line;
}

std::string format_log_record(const LogEvent& event) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[40];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char millis[16];
  std::snprintf(millis, sizeof millis, ".%03dZ [", static_cast<int>(ms));
  std::string record = stamp;
  record += millis;
  record += to_string(event.level);
  record += "] ";
  record += format_log_line(event);
  return record;
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

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warning" || name == "warn") return LogLevel::warning;
  if (name == "error") return LogLevel::error;
  return std::nullopt;
}

}  // namespace torsion
