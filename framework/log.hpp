#pragma once
/// \file
/// The logging facade: what the framework swallows (exceptions in callbacks, accept
/// errors, unhandled errors) is reported here, and users may route it anywhere.
///
/// An event has a level, a message and, when it is about one connection, a LogContext
/// (the connection's id and its two addresses). Two kinds of sink receive events:
///  - a LogSink gets (level, line): the message with the context written in front,
///    "conn 7 127.0.0.1:8080 <- 127.0.0.1:40312: exception in data_received: ...";
///  - a LogEventSink gets the structured LogEvent, for sinks that keep fields apart.
/// The default sink writes one line per event to stderr:
///     2026-11-26T05:30:00.123Z [error] conn 7 127.0.0.1:8080 <- 127.0.0.1:40312: ...

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "framework/address.hpp"

namespace torsion {

/// Severity of a log event.
enum class LogLevel { debug, info, warning, error };

/// What an event is about: one connection, named by a process-wide id (from
/// next_connection_id()) and its local (host) and remote (peer) addresses.
struct LogContext {
  std::uint64_t connection_id = 0;  ///< 0: not about a connection
  Address host;                     ///< local address
  Address peer;                     ///< remote address
};

/// One event as a LogEventSink sees it. The references are valid during the sink call only.
struct LogEvent {
  LogLevel level;             ///< the event's severity
  std::string_view message;   ///< what happened, without the context
  const LogContext* context;  ///< null when the event is not about a connection
};

/// Receives every event at or above the minimum level as one formatted line (context
/// first, no time stamp, no newline). Called on the thread that logged (the reactor's
/// thread for framework events).
using LogSink = std::function<void(LogLevel, std::string_view line)>;

/// Receives every event at or above the minimum level, structured.
using LogEventSink = std::function<void(const LogEvent&)>;

/// Replaces the sink with a line sink; an empty function (or nullptr) restores the
/// default, which writes to stderr. Not thread-safe against concurrent logging: set sinks
/// at start-up, or while no other thread logs.
void set_log_sink(LogSink sink);

/// Replaces the sink with a structured sink; empty restores the default. As set_log_sink.
void set_log_event_sink(LogEventSink sink);

/// Events below `level` are dropped (default: info). Thread-safe.
void set_log_level(LogLevel level) noexcept;

/// The current minimum level. Thread-safe.
LogLevel log_level() noexcept;

/// True if an event at `level` would reach the sink: test it before building an
/// expensive message (debug lines on hot paths). Thread-safe.
bool log_enabled(LogLevel level) noexcept;

/// Sends one event, not about a connection, to the sink.
void log(LogLevel level, std::string_view message);

/// Sends one event about the connection `context` to the sink.
void log(LogLevel level, const LogContext& context, std::string_view message);

/// A new connection id: 1, 2, 3... unique in the process. Thread-safe.
std::uint64_t next_connection_id() noexcept;

/// The line a LogSink receives for `event`: "conn ID HOST <- PEER: MESSAGE", or just
/// the message when the event has no context. Parts that are unknown are left out.
std::string format_log_line(const LogEvent& event);

/// The line the default sink writes for `event` (without the newline): a UTC time stamp
/// with milliseconds, the level in brackets, then format_log_line(event):
/// "2026-11-26T05:30:00.123Z [error] conn 7 ...: message". LogFile writes the same.
std::string format_log_record(const LogEvent& event);

/// The name of a level: "debug", "info", "warning", "error".
std::string_view to_string(LogLevel level) noexcept;

/// The level named `name` (as to_string writes it, or "warn"), or nothing.
std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;

}  // namespace torsion
