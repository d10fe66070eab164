#pragma once
/// \file
/// LogFile: the log written to a file, as twistd's --logfile did, and reopened when
/// logrotate (or an operator) asks, so a rotated file is never written to again.
///
///     auto file = torsion::LogFile::open("/var/log/echo/echo.log");
///     torsion::set_log_event_sink(file->sink());
///     file->reopen_on_sighup();  // logrotate: postrotate kill -HUP $(cat echo.pid)
///
/// Each event is one line (format_log_record: time stamp, level, context, message)
/// written with one write(2) to a descriptor opened with O_APPEND, so lines are complete
/// in the file as soon as they are logged (nothing waits in a user-space buffer) and
/// several processes or threads appending to one file never interleave within a line.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "framework/log.hpp"

namespace torsion {

/// An append-only log file that can be reopened at the same path. Thread-safe: write and
/// reopen may be called from any thread (a mutex orders them).
class LogFile : public std::enable_shared_from_this<LogFile> {
 public:
  /// Opens (creating it with mode 0640 if needed) the file at `path` for appending.
  /// Throws std::system_error naming the path if it cannot be opened.
  static std::shared_ptr<LogFile> open(std::string path);

  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  /// Appends format_log_record(event) and a newline with one write(2). A failed write is
  /// reported once on stderr (and again after a write succeeds); logging never throws.
  void write(const LogEvent& event);
  /// Appends `line` and a newline as it is (no time stamp or level).
  void write_line(std::string_view line);

  /// Opens `path` again and writes there from now on: after logrotate renamed the file,
  /// the next line goes to a new file at the old name. If the open fails, the old
  /// descriptor is kept (its lines are not lost) and the error is reported on stderr;
  /// returns whether the file was reopened.
  bool reopen();

  /// Reopens this file before the next line it writes after the process receives
  /// SIGHUP (logrotate's postrotate signal). Installs a SIGHUP handler for the whole
  /// process (replacing the default, which ends it); the handler only notes the signal,
  /// the reopen happens in write(), on the thread that logs. Several LogFiles may ask;
  /// each reopens once per signal. Do not also handle SIGHUP elsewhere (e.g. an Asio
  /// signal_set): only one handler wins.
  void reopen_on_sighup();

  /// A LogEventSink for set_log_event_sink that writes every event here; it keeps this
  /// LogFile alive as long as it is installed.
  LogEventSink sink();

  /// The path given to open().
  const std::string& path() const noexcept { return path_; }

 private:
  explicit LogFile(std::string path, int fd);
  void reopen_if_signalled();  // with mu_ held
  bool reopen_locked();        // with mu_ held
  void append(std::string& line);

  std::mutex mu_;
  std::string path_;
  int fd_;
  bool follows_sighup_ = false;
  std::uint64_t sighup_seen_ = 0;  // the SIGHUP count at the last reopen
  bool write_failed_ = false;      // reported once until a write succeeds
};

}  // namespace torsion
