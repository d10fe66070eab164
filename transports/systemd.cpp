#include "transports/systemd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "framework/log.hpp"
#include "transports/adopt.hpp"

namespace torsion {
namespace {

constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
constexpr long kMaxFds = 4096;

// `text` as a decimal number in 0..max, or -1.
long parse_count(const char* text, long max) {
  if (!text || !*text) return -1;
  long value = -1;
  const char* end = text + std::strlen(text);
  const auto [at, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || at != end || value < 0 || value > max) return -1;
  return value;
}

std::string describe_passed(const std::vector<SystemdSocket>& sockets) {
  if (sockets.empty())
    return "systemd passed no sockets (LISTEN_FDS/LISTEN_PID unset or for another process)";
  std::string s = "systemd passed " + std::to_string(sockets.size()) + " socket(s):";
  for (std::size_t i = 0; i < sockets.size(); ++i)
    s += " " + std::to_string(i) + "=" + sockets[i].name;
  return s;
}

std::shared_ptr<ListeningPort> listen_on(Reactor& reactor, int fd, Factory& factory,
                                         std::error_code& ec) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, kFirstFd);
  if (copy < 0) {
    ec = std::error_code(errno, std::system_category());
    return nullptr;
  }
  auto port = adopt_listening_socket(reactor, copy, factory, ec);
  if (ec) ::close(copy);
  return port;
}

std::system_error listen_error(std::error_code ec, const std::string& which) {
  return std::system_error(ec, "listen_systemd " + which + " (" + describe_passed(systemd_sockets()) + ")");
}

}  // namespace

std::vector<SystemdSocket> systemd_sockets() {
  std::vector<SystemdSocket> out;
  const long pid = parse_count(std::getenv("LISTEN_PID"), 0x7fffffff);
  if (pid <= 0 || pid != ::getpid()) return out;
  const long count = parse_count(std::getenv("LISTEN_FDS"), kMaxFds);
  if (count <= 0) return out;
  const char* names = std::getenv("LISTEN_FDNAMES");
  std::string_view rest = names ? names : "";
  for (long i = 0; i < count; ++i) {
    SystemdSocket s;
    s.fd = kFirstFd + static_cast<int>(i);
    const auto colon = rest.find(':');
    s.name = std::string(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (s.name.empty()) s.name = "unknown";
    const int flags = ::fcntl(s.fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) ::fcntl(s.fd, F_SETFD, flags | FD_CLOEXEC);
    out.push_back(std::move(s));
  }
  return out;
}

std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::size_t index,
                                              Factory& factory, std::error_code& ec) {
  ec.clear();
  const auto sockets = systemd_sockets();
  if (index >= sockets.size()) {
    ec = std::make_error_code(std::errc::no_such_device_or_address);
    return nullptr;
  }
  return listen_on(reactor, sockets[index].fd, factory, ec);
}

std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::size_t index,
                                              Factory& factory) {
  std::error_code ec;
  auto port = listen_systemd(reactor, index, factory, ec);
  if (ec) throw listen_error(ec, "index " + std::to_string(index));
  return port;
}

std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::string_view name,
                                              Factory& factory, std::error_code& ec) {
  ec.clear();
  for (const auto& s : systemd_sockets())
    if (s.name == name) return listen_on(reactor, s.fd, factory, ec);
  ec = std::make_error_code(std::errc::no_such_device_or_address);
  return nullptr;
}

std::shared_ptr<ListeningPort> listen_systemd(Reactor& reactor, std::string_view name,
                                              Factory& factory) {
  std::error_code ec;
  auto port = listen_systemd(reactor, name, factory, ec);
  if (ec) throw listen_error(ec, "name '" + std::string(name) + "'");
  return port;
}

bool systemd_notify(std::string_view state, std::error_code& ec) {
  ec.clear();
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return false;
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ec = std::error_code(errno, std::system_category());
    return false;
  }
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&addr), addr_len);
  if (sent < 0) ec = std::error_code(errno, std::system_category());
  ::close(fd);
  return !ec;
}

bool systemd_notify(std::string_view state) {
  std::error_code ec;
  const bool sent = systemd_notify(state, ec);
  if (ec)
    log(LogLevel::warning, "systemd_notify '" + std::string(state) + "' failed: " + ec.message());
  return sent;
}

void notify_systemd_ready(Reactor& reactor) {
  if (!systemd_notify("READY=1")) return;
  reactor.add_shutdown_trigger(ShutdownPhase::before, [] { systemd_notify("STOPPING=1"); });
}

}  // namespace torsion
