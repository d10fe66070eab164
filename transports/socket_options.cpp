#include "transports/socket_options.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <string>

namespace torsion {
namespace {

void set_int(const Transport& t, int level, int name, int value, std::error_code& ec) {
  ec.clear();
  const int fd = t.native_handle();
  if (fd < 0) {
    ec = std::make_error_code(std::errc::bad_file_descriptor);
    return;
  }
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
    ec = std::error_code(errno, std::system_category());
}

int get_int(const Transport& t, int level, int name, const char* what) {
  const int fd = t.native_handle();
  if (fd < 0)
    throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what);
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0)
    throw std::system_error(std::error_code(errno, std::system_category()), what);
  return value;
}

void throw_if(const std::error_code& ec, const char* what) {
  if (ec) throw std::system_error(ec, what);
}

void check_positive(int bytes, const char* what) {
  if (bytes <= 0)
    throw std::invalid_argument(std::string(what) + ": bytes must be > 0, got " +
                                std::to_string(bytes));
}

}  // namespace

void set_tcp_no_delay(Transport& transport, bool on, std::error_code& ec) {
  set_int(transport, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, ec);
}
void set_tcp_no_delay(Transport& transport, bool on) {
  std::error_code ec;
  set_tcp_no_delay(transport, on, ec);
  throw_if(ec, "set_tcp_no_delay");
}
bool tcp_no_delay(const Transport& transport) {
  return get_int(transport, IPPROTO_TCP, TCP_NODELAY, "tcp_no_delay") != 0;
}

void set_tcp_keep_alive(Transport& transport, bool on, const TcpKeepAlive& timing,
                        std::error_code& ec) {
  const auto check = [](int v, const char* field) {
    if (v < 0)
      throw std::invalid_argument(std::string("set_tcp_keep_alive: ") + field +
                                  " must be >= 0, got " + std::to_string(v));
  };
  check(timing.idle_seconds, "idle_seconds");
  check(timing.interval_seconds, "interval_seconds");
  check(timing.probes, "probes");
  set_int(transport, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, ec);
  if (ec || !on) return;
  if (timing.idle_seconds > 0) set_int(transport, IPPROTO_TCP, TCP_KEEPIDLE, timing.idle_seconds, ec);
  if (!ec && timing.interval_seconds > 0)
    set_int(transport, IPPROTO_TCP, TCP_KEEPINTVL, timing.interval_seconds, ec);
  if (!ec && timing.probes > 0) set_int(transport, IPPROTO_TCP, TCP_KEEPCNT, timing.probes, ec);
}
void set_tcp_keep_alive(Transport& transport, bool on, const TcpKeepAlive& timing) {
  std::error_code ec;
  set_tcp_keep_alive(transport, on, timing, ec);
  throw_if(ec, "set_tcp_keep_alive");
}
bool tcp_keep_alive(const Transport& transport) {
  return get_int(transport, SOL_SOCKET, SO_KEEPALIVE, "tcp_keep_alive") != 0;
}

void set_send_buffer_size(Transport& transport, int bytes, std::error_code& ec) {
  check_positive(bytes, "set_send_buffer_size");
  set_int(transport, SOL_SOCKET, SO_SNDBUF, bytes, ec);
}
void set_send_buffer_size(Transport& transport, int bytes) {
  std::error_code ec;
  set_send_buffer_size(transport, bytes, ec);
  throw_if(ec, "set_send_buffer_size");
}
int send_buffer_size(const Transport& transport) {
  return get_int(transport, SOL_SOCKET, SO_SNDBUF, "send_buffer_size");
}

void set_receive_buffer_size(Transport& transport, int bytes, std::error_code& ec) {
  check_positive(bytes, "set_receive_buffer_size");
  set_int(transport, SOL_SOCKET, SO_RCVBUF, bytes, ec);
}
void set_receive_buffer_size(Transport& transport, int bytes) {
  std::error_code ec;
  set_receive_buffer_size(transport, bytes, ec);
  throw_if(ec, "set_receive_buffer_size");
}
int receive_buffer_size(const Transport& transport) {
  return get_int(transport, SOL_SOCKET, SO_RCVBUF, "receive_buffer_size");
}

}  // namespace torsion
