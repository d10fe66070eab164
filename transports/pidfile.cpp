#include "transports/pidfile.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

namespace torsion {

pid_t PidFile::read(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return 0;
  long value = 0;
  const char* end = buf + n;
  const auto [at, ec] = std::from_chars(buf, end, value);
  if (ec != std::errc() || value <= 0 || value > 0x3fffffff) return 0;
  if (at != end && *at != '\n') return 0;
  return static_cast<pid_t>(value);
}

PidFile::PidFile(std::string path) : path_(std::move(path)), pid_(::getpid()) {
  const pid_t other = read(path_);
  if (other > 0 && other != pid_ && (::kill(other, 0) == 0 || errno == EPERM))
    throw std::system_error(EEXIST, std::system_category(),
                            "pidfile " + path_ + ": process " + std::to_string(other) +
                                " is running");
  const std::string text = std::to_string(pid_) + "\n";
  const std::string temporary = path_ + ".tmp." + std::to_string(pid_);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "pidfile " + temporary);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int write_errno = errno;
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), path_.c_str()) != 0) {
    const int err = written ? errno : write_errno;
    ::unlink(temporary.c_str());
    throw std::system_error(err, std::system_category(), "pidfile " + path_);
  }
}

PidFile::~PidFile() {
  if (!path_.empty() && read(path_) == pid_) ::unlink(path_.c_str());
}

PidFile::PidFile(PidFile&& other) noexcept
    : path_(std::exchange(other.path_, {})), pid_(other.pid_) {}

PidFile& PidFile::operator=(PidFile&& other) noexcept {
  if (this != &other) {
    if (!path_.empty() && read(path_) == pid_) ::unlink(path_.c_str());
    path_ = std::exchange(other.path_, {});
    pid_ = other.pid_;
  }
  return *this;
}

}  // namespace torsion
