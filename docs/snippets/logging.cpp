#include "docs/snippets/snippets.hpp"
#include "framework/log.hpp"
#include "framework/log_file.hpp"
#include "framework/log_journal.hpp"

namespace docs {

std::vector<std::string> logged_lines() {
  std::vector<std::string> lines;
  // [snippet:route]
  torsion::set_log_level(torsion::LogLevel::debug);  // default: info
  torsion::set_log_sink([&lines](torsion::LogLevel level, std::string_view line) {
    lines.push_back(std::string(torsion::to_string(level)) + ": " + std::string(line));
  });
  // [end]
  // [snippet:log]
  torsion::log(torsion::LogLevel::info, "starting");
  const torsion::LogContext conn{torsion::next_connection_id(),
                                 torsion::Address::ip("127.0.0.1", 8080),
                                 torsion::Address::ip("127.0.0.1", 40312)};
  torsion::log(torsion::LogLevel::warning, conn, "client too slow, dropping it");
  // the sink receives "conn 1 127.0.0.1:8080 <- 127.0.0.1:40312: client too slow, dropping it"
  // [end]
  // [snippet:structured]
  torsion::set_log_event_sink([&lines](const torsion::LogEvent& e) {
    // fields apart, e.g. for JSON lines or a metrics counter per connection
    lines.push_back("id=" + std::to_string(e.context ? e.context->connection_id : 0) +
                    " msg=" + std::string(e.message));
  });
  // [end]
  torsion::log(torsion::LogLevel::debug, "structured");
  // [snippet:restore]
  torsion::set_log_sink(nullptr);  // back to stderr
  torsion::set_log_level(torsion::LogLevel::info);
  // [end]
  return lines;
}

void log_to_file(const std::string& path) {
  // [snippet:file]
  auto file = torsion::LogFile::open(path);   // appends; throws if it cannot open it
  file->reopen_on_sighup();                   // logrotate's postrotate: kill -HUP <pid>
  torsion::set_log_event_sink(file->sink());  // the sink keeps the file open
  // [end]
  torsion::log(torsion::LogLevel::info, "to the file");
  torsion::set_log_sink(nullptr);
}

void log_to_journal(const std::string& journal_socket) {
  // [snippet:journal]
  // journal_socket: torsion::default_journal_socket, /run/systemd/journal/socket
  torsion::set_log_event_sink(torsion::journal_sink("echo_server", journal_socket));
  // or, under StandardError=journal: "<4>message" lines on stderr
  // torsion::set_log_event_sink(torsion::stderr_priority_sink());
  // [end]
  torsion::log(torsion::LogLevel::warning, "to the journal");
  torsion::set_log_sink(nullptr);
}

}  // namespace docs
