#pragma once
/// \file
/// Logging to systemd's journal, without libsystemd, two ways:
///  - journal_sink: one datagram per event in the journal's native protocol, sent to
///    /run/systemd/journal/socket (what sd_journal_send(3) does). The fields stay apart:
///    MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and, for an event about a connection,
///    TORSION_CONNECTION_ID, TORSION_HOST and TORSION_PEER, so
///    `journalctl TORSION_CONNECTION_ID=7` shows one connection's story.
///  - stderr_priority_sink: one line per event on stderr, prefixed with "<N>", the
///    syslog priority (sd-daemon(3)); journald reads the prefix when the unit has
///    StandardError=journal (the default for services). No fields, but nothing to set up,
///    and it also works under any supervisor that keeps stderr.

#include <string>
#include <string_view>

#include "framework/log.hpp"

namespace torsion {

/// Where journald listens for native-protocol datagrams.
inline constexpr std::string_view default_journal_socket = "/run/systemd/journal/socket";

/// The longest MESSAGE a journal entry carries; a longer one is cut to this many bytes
/// so that every entry fits in one datagram.
inline constexpr std::size_t max_journal_message = 64 * 1024;

/// The syslog priority of a level, as journald's PRIORITY= and the "<N>" prefix use it:
/// error 3, warning 4, info 6, debug 7.
int syslog_priority(LogLevel level) noexcept;

/// The datagram journal_sink sends for `event`: "FIELD=value\n" per field, or, for a value
/// holding a newline, "FIELD\n", its length as 8 bytes little-endian, the value and "\n"
/// (the native protocol, systemd's JOURNAL_NATIVE_PROTOCOL). MESSAGE is format_log_line
/// (cut to max_journal_message bytes); SYSLOG_IDENTIFIER is left out when `identifier`
/// is empty; the TORSION_ fields only when known.
std::string format_journal_entry(const LogEvent& event, std::string_view identifier);

/// A LogEventSink for set_log_event_sink that sends each event as one datagram to the
/// Unix datagram socket at `socket_path` (journald's, by default; tests give their own).
/// `identifier` names the program in the journal (SYSLOG_IDENTIFIER, as
/// journalctl -t shows). An event the socket does not take (no journald, a full queue is
/// not waited for) is written to stderr as the default sink writes it, and the failure
/// is reported there once. Thread-safe: may be called from any thread. Throws
/// std::invalid_argument if the path is too long for a Unix socket address and
/// std::system_error if no socket can be made.
LogEventSink journal_sink(std::string identifier,
                          std::string_view socket_path = default_journal_socket);

/// The line stderr_priority_sink writes for `event`: "<N>" then format_log_line(event),
/// without a newline (a message's own newlines become spaces, since journald reads
/// each line as an entry).
std::string format_priority_line(const LogEvent& event);

/// A LogEventSink that writes format_priority_line(event) and a newline to stderr, one
/// write per event (lines from several threads do not interleave). No time stamp: the
/// journal adds its own.
LogEventSink stderr_priority_sink();

}  // namespace torsion
