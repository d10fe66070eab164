// epoll_echo [--port N] [--sink]: the floor. A minimal echo server on Linux epoll, the
// least a server can do per message: level-triggered, one recv into one buffer shared by
// every connection and one send of what was read per readable event; only what the kernel
// does not take is kept (and sent when writable). With --sink it discards what it reads
// and answers end of file with the decimal count of bytes received. With --pong it answers
// every line it reads with "+PONG\r\n" instead of echoing: the least a RESP server can do
// for redis-benchmark's PING_INLINE, no parsing, no state (redis.sh FLOOR=1).
// Prints "listening on 127.0.0.1:PORT" first, like examples/echo_server.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "floor_common.hpp"

namespace {

struct Conn {
  std::string pending;  // what the kernel did not take
  std::size_t count = 0;
  bool closing = false;
};

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const floor_server::Options options = floor_server::parse_options(argc, argv, true);
  const bool sink = options.sink;
  const bool pong = options.pong;
  std::string pongs;
  floor_server::raise_descriptor_limit();
  const int lfd = floor_server::listen_loopback(options.port, SOCK_NONBLOCK);
  const int one = 1;

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, Conn> conns;
  static char buf[64 * 1024];
  epoll_event events[256];

  auto close_conn = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
  };
  // Sends `data` (after what waits); keeps what the kernel refuses and waits for writable.
  auto send_all = [&](int fd, Conn& c, const char* data, std::size_t size) {
    if (c.pending.empty()) {
      const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) return false;
      const std::size_t sent = n < 0 ? 0 : static_cast<std::size_t>(n);
      if (sent == size) return true;
      c.pending.assign(data + sent, size - sent);
      epoll_event w{};
      w.events = EPOLLIN | EPOLLOUT;
      w.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_MOD, fd, &w);
      return true;
    }
    c.pending.append(data, size);
    return true;
  };

  for (;;) {
    const int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conns.emplace(cfd, Conn{});
          epoll_event c{};
          c.events = EPOLLIN;
          c.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &c);
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      if ((events[i].events & EPOLLOUT) != 0 && !c.pending.empty()) {
        const ssize_t w = send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
          close_conn(fd);
          continue;
        }
        if (w > 0) c.pending.erase(0, static_cast<std::size_t>(w));
        if (c.pending.empty()) {
          if (c.closing) {
            close_conn(fd);
            continue;
          }
          epoll_event r{};
          r.events = EPOLLIN;
          r.data.fd = fd;
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &r);
        }
      }
      if ((events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0 || c.closing) continue;
      const ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r < 0) {
        if (errno != EAGAIN) close_conn(fd);
        continue;
      }
      if (r == 0) {
        if (!sink) {
          close_conn(fd);
          continue;
        }
        const std::string reply = std::to_string(c.count);
        c.closing = true;
        if (!send_all(fd, c, reply.data(), reply.size()) || c.pending.empty()) close_conn(fd);
        continue;
      }
      if (sink) {
        c.count += static_cast<std::size_t>(r);
        continue;
      }
      if (pong) {
        pongs.clear();
        for (const char* p = buf; (p = static_cast<const char*>(std::memchr(
                                       p, '\n', static_cast<std::size_t>(buf + r - p))));
             ++p)
          pongs += "+PONG\r\n";
        if (!pongs.empty() && !send_all(fd, c, pongs.data(), pongs.size())) close_conn(fd);
        continue;
      }
      if (!send_all(fd, c, buf, static_cast<std::size_t>(r))) close_conn(fd);
    }
  }
}
