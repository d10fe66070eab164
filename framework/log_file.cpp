#include "framework/log_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

namespace torsion {
namespace {

// How many SIGHUPs the process has received since reopen_on_sighup installed the handler.
// A lock-free atomic is all a signal handler may touch.
std::atomic<std::uint64_t> sighup_count{0};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

extern "C" void note_sighup(int) { sighup_count.fetch_add(1, std::memory_order_relaxed); }

void install_sighup_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = note_sighup;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (::sigaction(SIGHUP, &action, nullptr) != 0)
      throw std::system_error(errno, std::generic_category(), "LogFile: sigaction(SIGHUP)");
  });
}

int open_for_append(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

std::shared_ptr<LogFile> LogFile::open(std::string path) {
  const int fd = open_for_append(path);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open log file " + path);
  return std::shared_ptr<LogFile>(new LogFile(std::move(path), fd));
}

LogFile::LogFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

LogFile::~LogFile() { ::close(fd_); }

void LogFile::write(const LogEvent& event) {
  std::string line = format_log_record(event);
  append(line);
}

void LogFile::write_line(std::string_view text) {
  std::string line(text);
  append(line);
}

void LogFile::append(std::string& line) {
  line += '\n';
  std::lock_guard lock(mu_);
  reopen_if_signalled();
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!write_failed_)
        std::fprintf(stderr, "torsion: cannot write to log file %s: %s\n", path_.c_str(),
                     n < 0 ? std::strerror(errno) : "no progress");
      write_failed_ = true;
      return;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  write_failed_ = false;
}

bool LogFile::reopen() {
  std::lock_guard lock(mu_);
  return reopen_locked();
}

bool LogFile::reopen_locked() {
  const int fd = open_for_append(path_);
  if (fd < 0) {
    std::fprintf(stderr, "torsion: cannot reopen log file %s: %s (still writing to the old one)\n",
                 path_.c_str(), std::strerror(errno));
    return false;
  }
  ::close(std::exchange(fd_, fd));
  return true;
}

void LogFile::reopen_if_signalled() {
  if (!follows_sighup_) return;
  const std::uint64_t seen = sighup_count.load(std::memory_order_relaxed);
  if (seen == sighup_seen_) return;
  sighup_seen_ = seen;
  reopen_locked();
}

void LogFile::reopen_on_sighup() {
  install_sighup_handler();
  std::lock_guard lock(mu_);
  if (follows_sighup_) return;
  follows_sighup_ = true;
  sighup_seen_ = sighup_count.load(std::memory_order_relaxed);
}

LogEventSink LogFile::sink() {
  // A LogFile is made only by open(), so it is always owned by a shared_ptr.
  auto self = shared_from_this();
  return [self](const LogEvent& event) { self->write(event); };
}

}  // namespace torsion
