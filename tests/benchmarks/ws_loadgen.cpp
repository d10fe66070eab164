// ws_loadgen: the WebSocket echo load of ws_bench.sh, and the same bytes over a raw TCP echo.
//
//   ws_loadgen --port P [--mode ws|raw] [--conns C] [--size S] [--seconds T] [--warmup W]
//              [--server-pid PID]
//
// ws:  C connections do the opening handshake (no extension offered), then each keeps one
//      binary message of S bytes in flight: a masked frame out, the unmasked echo back,
//      whose payload is compared with what was sent (a mismatch exits with status 3).
// raw: the same masked frames, byte for byte, to a plain TCP echo server, which sends
//      them back unchanged (compared too): the same load without WebSocket's framing work.
//
// Output: one line of key=value pairs: messages and messages/s over the measured window,
// and with --server-pid the server's CPU (utime+stime from /proc/PID/stat, all threads)
// per message. Single-threaded level-triggered epoll, so its own cost per message is small
// and the same whichever server it drives.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "ws_loadgen: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "ws_loadgen: FAILED: %s\n", what.c_str());
  std::exit(3);
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// utime + stime of `pid` (all its threads), in clock ticks; fields 14 and 15 of
// /proc/PID/stat, counted after the ")" that ends the command name.
std::uint64_t cpu_ticks(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::size_t paren = all.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(all.substr(paren + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return utime + stime;
}

std::string frame_header(std::size_t size, bool masked) {
  std::string h;
  h.push_back(static_cast<char>(0x82));  // FIN, binary
  const unsigned char m = masked ? 0x80 : 0;
  if (size <= 125) {
    h.push_back(static_cast<char>(m | size));
  } else if (size <= 0xFFFF) {
    h.push_back(static_cast<char>(m | 126));
    h.push_back(static_cast<char>(size >> 8));
    h.push_back(static_cast<char>(size & 0xFF));
  } else {
    h.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((static_cast<std::uint64_t>(size) >> (8 * i)) & 0xFF));
  }
  return h;
}

struct Conn {
  int fd = -1;
  std::string out;       // the frame this connection sends, every time
  std::string expected;  // what comes back for it
  std::size_t sent = 0;
  std::string in;        // handshake bytes, then the reply being read
  std::size_t matched = 0;
  bool open = false;     // handshake done (raw: at once)
  bool want_out = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "ws";
  int port = 0, conns_n = 50, server_pid = 0;
  std::size_t size = 64;
  double seconds = 5, warmup = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--port") port = std::atoi(v);
    else if (k == "--mode") mode = v;
    else if (k == "--conns") conns_n = std::atoi(v);
    else if (k == "--size") size = static_cast<std::size_t>(std::atoll(v));
    else if (k == "--seconds") seconds = std::atof(v);
    else if (k == "--warmup") warmup = std::atof(v);
    else if (k == "--server-pid") server_pid = std::atoi(v);
    else fail("unknown option " + k);
  }
  if (port <= 0 || (mode != "ws" && mode != "raw")) fail("usage: ws_loadgen --port P [--mode ws|raw] ...");
  const bool ws = mode == "ws";

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::vector<Conn> conns(static_cast<std::size_t>(conns_n));
  std::mt19937 rng(12345);
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  for (std::size_t i = 0; i < conns.size(); ++i) {
    Conn& c = conns[i];
    std::string payload(size, '\0');
    for (auto& b : payload) b = static_cast<char>(rng());
    c.out = frame_header(size, true) + std::string(reinterpret_cast<const char*>(key), 4);
    for (std::size_t j = 0; j < size; ++j) c.out.push_back(static_cast<char>(payload[j] ^ static_cast<char>(key[j & 3])));
    c.expected = ws ? frame_header(size, false) + payload : c.out;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket");
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) die("connect");
    if (ws) {
      const std::string request =
          "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
      if (write(c.fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) die("write");
      char buf[4096];
      while (c.in.find("\r\n\r\n") == std::string::npos) {
        const ssize_t r = read(c.fd, buf, sizeof buf);
        if (r <= 0) fail("the handshake: no answer");
        c.in.append(buf, static_cast<std::size_t>(r));
      }
      if (c.in.rfind("HTTP/1.1 101", 0) != 0) fail("the handshake: " + c.in.substr(0, c.in.find('\r')));
      if (c.in.size() != c.in.find("\r\n\r\n") + 4) fail("the handshake: bytes after the 101");
      c.in.clear();
    }
    if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
  }

  auto set_out = [&](Conn& c, std::size_t i, bool want) {
    if (c.want_out == want) return;
    c.want_out = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev) != 0) die("epoll_ctl");
  };
  auto flush = [&](Conn& c, std::size_t i) {
    while (c.sent < c.out.size()) {
      const ssize_t w = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) break;
        die("send");
      }
      c.sent += static_cast<std::size_t>(w);
    }
    set_out(c, i, c.sent < c.out.size());
  };
  for (std::size_t i = 0; i < conns.size(); ++i) flush(conns[i], i);

  static char buf[1 << 18];
  std::vector<epoll_event> events(256);
  const std::uint64_t t_start = now_ns();
  const std::uint64_t warm_end = t_start + static_cast<std::uint64_t>(warmup * 1e9);
  const std::uint64_t end = warm_end + static_cast<std::uint64_t>(seconds * 1e9);
  std::uint64_t done = 0, done0 = 0, t0 = 0, cpu0 = 0;
  bool measuring = false;
  for (;;) {
    const std::uint64_t t = now_ns();
    if (!measuring && t >= warm_end && t0 == 0) {
      measuring = true;
      t0 = t, done0 = done, cpu0 = cpu_ticks(server_pid);
    }
    if (measuring && t >= end) break;
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; ++e) {
      const std::size_t i = events[static_cast<std::size_t>(e)].data.u64;
      Conn& c = conns[i];
      const std::uint32_t ev = events[static_cast<std::size_t>(e)].events;
      if (ev & EPOLLOUT) flush(c, i);
      if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      const ssize_t r = read(c.fd, buf, sizeof buf);
      if (r < 0) {
        if (errno == EAGAIN) continue;
        die("read");
      }
      if (r == 0) fail("the server closed connection " + std::to_string(i));
      const std::size_t got = static_cast<std::size_t>(r);
      if (c.matched + got > c.expected.size()) fail("more bytes came back than one echo");
      if (std::memcmp(buf, c.expected.data() + c.matched, got) != 0)
        fail("wrong bytes on connection " + std::to_string(i));
      c.matched += got;
      if (c.matched == c.expected.size()) {
        ++done;
        c.matched = 0;
        c.sent = 0;
        flush(c, i);
      }
    }
  }
  const std::uint64_t t1 = now_ns();
  const std::uint64_t cpu1 = cpu_ticks(server_pid);
  const double secs = static_cast<double>(t1 - t0) / 1e9;
  const std::uint64_t msgs = done - done0;
  std::printf("mode=%s conns=%d size=%zu seconds=%.2f msgs=%" PRIu64 " rate=%.0f", mode.c_str(), conns_n,
              size, secs, msgs, static_cast<double>(msgs) / secs);
  if (server_pid > 0 && msgs > 0) {
    const double tick_us = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
    const double cpu_us = static_cast<double>(cpu1 - cpu0) * tick_us;
    std::printf(" cpu_us_per_msg=%.3f server_cpu_pct=%.0f", cpu_us / static_cast<double>(msgs),
                100.0 * cpu_us / 1e6 / secs);
  }
  std::printf("\n");
  for (auto& c : conns) close(c.fd);
  close(ep);
  return 0;
}
