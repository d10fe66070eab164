#include "framework/log_journal.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace torsion {
namespace {

// One field of the native protocol.
void add_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  if (value.find('\n') == std::string_view::npos) {
    out += '=';
    out += value;
  } else {
    out += '\n';
    std::uint64_t n = value.size();
    for (int i = 0; i < 8; ++i, n >>= 8) out += static_cast<char>(n & 0xff);
    out += value;
  }
  out += '\n';
}

void write_stderr(const std::string& line) {
  // One fwrite per line: stdio locks the stream, so lines from several threads stay whole.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

// The journal socket and where it is, shared by the copies of one sink.
class JournalSocket {
 public:
  JournalSocket(std::string identifier, std::string_view path) : identifier_(std::move(identifier)) {
    if (path.empty() || path.size() >= sizeof address_.sun_path)
      throw std::invalid_argument("journal_sink: socket path too long or empty: " + std::string(path));
    address_.sun_family = AF_UNIX;
    std::memcpy(address_.sun_path, path.data(), path.size());
    length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    // Non-blocking: a journald that falls behind makes us write to stderr, never wait.
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "journal_sink: socket");
  }
  ~JournalSocket() { ::close(fd_); }
  JournalSocket(const JournalSocket&) = delete;
  JournalSocket& operator=(const JournalSocket&) = delete;

  void send(const LogEvent& event) {
    const std::string entry = format_journal_entry(event, identifier_);
    ssize_t n;
    do {
      n = ::sendto(fd_, entry.data(), entry.size(), MSG_NOSIGNAL,
                   reinterpret_cast<const sockaddr*>(&address_), length_);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      failing_.store(false, std::memory_order_relaxed);
      return;
    }
    const int error = errno;
    if (!failing_.exchange(true, std::memory_order_relaxed))
      write_stderr(std::string("torsion: cannot log to the journal at ") + address_.sun_path +
                   ": " + std::strerror(error) + "; logging to stderr\n");
    write_stderr(format_log_record(event) + '\n');
  }

 private:
  std::string identifier_;
  sockaddr_un address_{};
  socklen_t length_ = 0;
  int fd_ = -1;
  std::atomic<bool> failing_{false};  // reported once until a send succeeds
};

}  // namespace

int syslog_priority(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return 7;    // LOG_DEBUG
    case LogLevel::info: return 6;     // LOG_INFO
    case LogLevel::warning: return 4;  // LOG_WARNING
    case LogLevel::error: return 3;    // LOG_ERR
  }
  return 3;
}

std::string format_journal_entry(const LogEvent& event, std::string_view identifier) {
  std::string message = format_log_line(event);
  if (message.size() > max_journal_message) message.resize(max_journal_message);
  std::string out;
  out.reserve(message.size() + 128);
  add_field(out, "MESSAGE", message);
  add_field(out, "PRIORITY", std::to_string(syslog_priority(event.level)));
  if (!identifier.empty()) add_field(out, "SYSLOG_IDENTIFIER", identifier);
  if (const LogContext* c = event.context) {
    if (c->connection_id != 0)
      add_field(out, "TORSION_CONNECTION_ID", std::to_string(c->connection_id));
    if (c->host.family() != Address::Family::none)
      add_field(out, "TORSION_HOST", c->host.to_string());
    if (c->peer.family() != Address::Family::none)
      add_field(out, "TORSION_PEER", c->peer.to_string());
  }
  return out;
}

LogEventSink journal_sink(std::string identifier, std::string_view socket_path) {
  auto socket = std::make_shared<JournalSocket>(std::move(identifier), socket_path);
  return [socket](const LogEvent& event) { socket->send(event); };
}

std::string format_priority_line(const LogEvent& event) {
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict) on "<" + std::string.
  std::string line(1, '<');
  line += std::to_string(syslog_priority(event.level));
  line += '>';
  line += format_log_line(event);
  for (std::size_t i = 3; i < line.size(); ++i)
    if (line[i] == '\n') line[i] = ' ';
  return line;
}

LogEventSink stderr_priority_sink() {
  return [](const LogEvent& event) { write_stderr(format_priority_line(event) + '\n'); };
}

}  // namespace torsion
