#pragma once
/// \file
/// The logging facade: what the framework swallows (exceptions in callbacks, accept
/// errors) is reported here, and users may route it anywhere.

#include <functional>
#include <string_view>

namespace torsion {

/// Severity of a log event.
enum class LogLevel { debug, info, warning, error };

/// Receives every log event at or above the minimum level. Called on the thread that
/// logged (the reactor's thread for framework events).
using LogSink = std::function<void(LogLevel, std::string_view message)>;

/// Replaces the sink; an empty function restores the default, which writes one line per
/// event to stderr with the time and level. Not thread-safe against concurrent logging.
void set_log_sink(LogSink sink);

/// Events below `level` are dropped (default: info).
void set_log_level(LogLevel level);

/// Sends one event to the sink.
void log(LogLevel level, std::string_view message);

/// The name of a level: "debug", "info", "warning", "error".
std::string_view to_string(LogLevel level) noexcept;

}  // namespace torsion
