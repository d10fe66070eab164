// loadgen: drives an echo (or sink) server on 127.0.0.1 and reports what it costs.
//
//   loadgen --port P [--mode echo|sink|connrate|idle] [--conns C] [--depth D] [--size S]
//           [--seconds T] [--warmup W] [--server-pid PID]
//
// echo:     C connections each keep D messages of S bytes in flight for T seconds; every
//           echoed byte is compared with what was sent (a mismatch exits with status 3).
// sink:     C connections write S-byte messages as fast as the server takes them; at the end
//           each half-closes and the server must answer with the decimal count of bytes it
//           received on that connection, which is checked.
// connrate: C concurrent clients loop: connect, echo 32 bytes, close.
// idle:     opens C connections, echoes 16 bytes on each, then reports the server's RSS
//           growth per connection (VmRSS after minus VmRSS before, divided by C). With
//           --burst B, each connection then echoes B bytes (32 connections at a time, the
//           bytes read back as they come), and the growth is reported again with all of
//           them idle: what a server keeps after a burst.
//
// Output: one line of key=value pairs (run.sh parses it). With --server-pid, the server's
// CPU time over the measured window comes from /proc/PID/task/*/schedstat (nanoseconds,
// per thread), which is far steadier on a shared machine than throughput; the per-thread
// shares show how a multi-reactor server splits its work.
//
// Single-threaded, level-triggered epoll, so that its own cost per message is small and
// constant whichever server it measures.

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string mode = "echo";
  int port = 0;
  int conns = 50;
  std::size_t depth = 1;
  std::size_t size = 64;
  double seconds = 3;
  double warmup = 0.5;
  int server_pid = 0;
  std::size_t burst = 0;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "loadgen: FAILED: %s\n", what.c_str());
  std::exit(3);
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// --- the server's CPU time --------------------------------------------------------

// Nanoseconds each thread of `pid` has run, by thread id.
std::map<int, std::uint64_t> thread_cpu(int pid) {
  std::map<int, std::uint64_t> out;
  if (pid <= 0) return out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name + "/schedstat");
    std::uint64_t ns = 0;
    if (f >> ns) out[std::atoi(e->d_name)] = ns;
  }
  closedir(d);
  return out;
}

std::uint64_t total(const std::map<int, std::uint64_t>& m) {
  std::uint64_t t = 0;
  for (auto& [tid, ns] : m) t += ns;
  return t;
}

// "p1/p2/..." : each thread's share of the CPU the server used in the window, busiest first
// (threads that used under 1% are left out).
std::string thread_shares(const std::map<int, std::uint64_t>& before,
                          const std::map<int, std::uint64_t>& after) {
  std::vector<double> d;
  double sum = 0;
  for (auto& [tid, ns] : after) {
    auto it = before.find(tid);
    const double delta = static_cast<double>(ns - (it == before.end() ? 0 : it->second));
    d.push_back(delta);
    sum += delta;
  }
  std::sort(d.rbegin(), d.rend());
  std::string s;
  for (double x : d) {
    if (sum <= 0 || x / sum < 0.01) continue;
    if (!s.empty()) s += '/';
    s += std::to_string(static_cast<int>(100 * x / sum + 0.5));
  }
  return s.empty() ? "-" : s;
}

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      f >> kib;
      return kib;
    }
    std::getline(f, key);
  }
  return -1;
}

// --- sockets ------------------------------------------------------------------------

int make_socket() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Starts a non-blocking connect; returns the descriptor.
int start_connect(int port) {
  const int fd = make_socket();
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS)
    die("connect");
  return fd;
}

// --- the byte pattern ---------------------------------------------------------------
// Message k of connection c is table[start(c, k) .. + size): consecutive messages start at
// different offsets, so a lost, repeated or reordered chunk cannot compare equal.

std::vector<unsigned char> table;

void make_table(std::size_t size) {
  table.resize(size + 256);
  std::mt19937 rng(12345);
  for (auto& b : table) b = static_cast<unsigned char>(rng());
}

std::size_t start(std::size_t conn, std::uint64_t k) { return (conn * 97 + k * 31) % 251; }

// --- latency --------------------------------------------------------------------------

struct Latency {
  std::vector<std::uint32_t> samples_ns;
  void add(std::uint64_t ns) {
    samples_ns.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(ns, 0xffffffffu)));
  }
  double percentile_us(double p) {
    if (samples_ns.empty()) return 0;
    const auto i = static_cast<std::size_t>(p * static_cast<double>(samples_ns.size() - 1));
    std::nth_element(samples_ns.begin(), samples_ns.begin() + static_cast<long>(i), samples_ns.end());
    return samples_ns[i] / 1000.0;
  }
};

class Epoll {
 public:
  Epoll() : fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) die("epoll_create1");
  }
  ~Epoll() { close(fd_); }
  void add(int fd, std::uint32_t events, std::uint64_t data) { ctl(EPOLL_CTL_ADD, fd, events, data); }
  void mod(int fd, std::uint32_t events, std::uint64_t data) { ctl(EPOLL_CTL_MOD, fd, events, data); }
  int wait(epoll_event* ev, int max, int timeout_ms) {
    const int n = epoll_wait(fd_, ev, max, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    return n < 0 ? 0 : n;
  }

 private:
  void ctl(int op, int fd, std::uint32_t events, std::uint64_t data) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    if (epoll_ctl(fd_, op, fd, &ev) != 0) die("epoll_ctl");
  }
  int fd_;
};

// Measured window bookkeeping shared by the modes.
struct Window {
  std::uint64_t t0 = 0, t1 = 0;
  std::uint64_t msgs0 = 0, msgs1 = 0;
  std::uint64_t bytes0 = 0, bytes1 = 0;
  std::map<int, std::uint64_t> cpu0, cpu1;
  std::uint64_t total = 0;  // echo: every message echoed, warm-up and drain included
};

void report(const Options& o, const Window& w, Latency* lat, const char* unit) {
  const double secs = static_cast<double>(w.t1 - w.t0) / 1e9;
  const std::uint64_t msgs = w.msgs1 - w.msgs0;
  const double bytes = static_cast<double>(w.bytes1 - w.bytes0);
  const std::uint64_t cpu = total(w.cpu1) - total(w.cpu0);
  std::printf("mode=%s conns=%d depth=%zu size=%zu seconds=%.2f %s=%" PRIu64
              " rate=%.0f mb_per_s=%.1f",
              o.mode.c_str(), o.conns, o.depth, o.size, secs, unit, msgs,
              static_cast<double>(msgs) / secs, bytes / secs / 1e6);
  if (lat) std::printf(" p50_us=%.1f p99_us=%.1f", lat->percentile_us(0.50), lat->percentile_us(0.99));
  if (w.total > 0) std::printf(" total_msgs=%" PRIu64, w.total);
  if (o.server_pid > 0 && msgs > 0)
    std::printf(" cpu_us_per_msg=%.3f server_cpu_pct=%.0f threads=%s",
                static_cast<double>(cpu) / 1e3 / static_cast<double>(msgs),
                100.0 * static_cast<double>(cpu) / 1e9 / secs,
                thread_shares(w.cpu0, w.cpu1).c_str());
  std::printf("\n");
}

// --- echo -------------------------------------------------------------------------------

struct EchoConn {
  int fd = -1;
  std::size_t id = 0;
  std::uint64_t sent = 0;     // bytes handed to the kernel
  std::uint64_t target = 0;   // bytes of messages issued so far
  std::uint64_t received = 0; // bytes echoed back and verified
  std::vector<std::uint64_t> issued_ns;  // ring of depth issue times
  bool want_out = false;
};

int run_echo(const Options& o) {
  make_table(o.size);
  Epoll ep;
  std::vector<EchoConn> conns(static_cast<std::size_t>(o.conns));
  const std::size_t S = o.size, D = o.depth;
  std::uint64_t msgs_done = 0, bytes_done = 0;
  Latency lat;
  lat.samples_ns.reserve(1 << 22);
  bool issuing = true, measuring = false;

  auto update_out = [&](EchoConn& c, bool want) {
    if (c.want_out == want) return;
    c.want_out = want;
    ep.mod(c.fd, EPOLLIN | (want ? EPOLLOUT : 0u), c.id);
  };
  auto flush = [&](EchoConn& c) {
    while (c.sent < c.target) {
      iovec iov[64];
      int n = 0;
      std::uint64_t off = c.sent;
      while (off < c.target && n < 64) {
        const std::uint64_t k = off / S;
        const std::size_t pos = static_cast<std::size_t>(off % S);
        const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(S - pos, c.target - off));
        iov[n].iov_base = &table[start(c.id, k) + pos];
        iov[n].iov_len = len;
        ++n;
        off += len;
      }
      const ssize_t w = writev(c.fd, iov, n);
      if (w < 0) {
        if (errno == EAGAIN) break;
        die("writev");
      }
      c.sent += static_cast<std::uint64_t>(w);
      if (c.sent < off) break;
    }
    update_out(c, c.sent < c.target);
  };
  auto issue = [&](EchoConn& c, std::uint64_t k) {
    c.issued_ns[k % D] = now_ns();
    c.target += S;
  };

  for (std::size_t i = 0; i < conns.size(); ++i) {
    EchoConn& c = conns[i];
    c.id = i;
    c.fd = start_connect(o.port);
    c.issued_ns.resize(D);
    ep.add(c.fd, EPOLLIN, i);
    for (std::size_t k = 0; k < D; ++k) issue(c, k);
    flush(c);  // a connecting socket says EAGAIN; EPOLLOUT then fires once connected
  }

  static unsigned char buf[1 << 18];
  std::vector<epoll_event> events(256);
  const std::uint64_t start_ns = now_ns();
  const std::uint64_t warm_end = start_ns + static_cast<std::uint64_t>(o.warmup * 1e9);
  const std::uint64_t end = warm_end + static_cast<std::uint64_t>(o.seconds * 1e9);
  Window w;
  std::uint64_t drain_deadline = 0;
  for (;;) {
    const std::uint64_t t = now_ns();
    if (!measuring && issuing && t >= warm_end) {
      measuring = true;
      lat.samples_ns.clear();
      w.t0 = t, w.msgs0 = msgs_done, w.bytes0 = bytes_done, w.cpu0 = thread_cpu(o.server_pid);
    }
    if (measuring && t >= end) {
      measuring = false;
      issuing = false;
      w.t1 = t, w.msgs1 = msgs_done, w.bytes1 = bytes_done, w.cpu1 = thread_cpu(o.server_pid);
      drain_deadline = t + 5000000000ull;
    }
    if (!issuing) {
      bool all = true;
      for (auto& c : conns) all = all && c.received == c.target;
      if (all) break;
      if (t > drain_deadline) fail("echo: replies still missing 5 s after the end");
    }
    const int n = ep.wait(events.data(), static_cast<int>(events.size()), 10);
    for (int i = 0; i < n; ++i) {
      EchoConn& c = conns[events[static_cast<std::size_t>(i)].data.u64];
      const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
      if (ev & EPOLLOUT) flush(c);
      if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      const ssize_t r = read(c.fd, buf, sizeof buf);
      if (r < 0) {
        if (errno == EAGAIN) continue;
        die("read");
      }
      if (r == 0) fail("echo: the server closed connection " + std::to_string(c.id));
      std::size_t got = static_cast<std::size_t>(r);
      if (c.received + got > c.sent) fail("echo: more bytes came back than were sent");
      const unsigned char* p = buf;
      bool issued = false;
      while (got > 0) {
        const std::uint64_t k = c.received / S;
        const std::size_t pos = static_cast<std::size_t>(c.received % S);
        const std::size_t len = std::min(S - pos, got);
        if (std::memcmp(p, &table[start(c.id, k) + pos], len) != 0)
          fail("echo: wrong bytes on connection " + std::to_string(c.id) + " at offset " +
               std::to_string(c.received));
        p += len, got -= len, c.received += len;
        if (pos + len == S) {
          const std::uint64_t t_done = now_ns();
          if (measuring) lat.add(t_done - c.issued_ns[k % D]);
          ++msgs_done;
          bytes_done += S;
          if (issuing) {
            issue(c, k + D);
            issued = true;
          }
        }
      }
      if (issued) flush(c);
    }
  }
  for (auto& c : conns) close(c.fd);
  w.total = msgs_done;
  report(o, w, &lat, "msgs");
  return 0;
}

// --- sink -------------------------------------------------------------------------------

int run_sink(const Options& o) {
  make_table(o.size);
  Epoll ep;
  struct SinkConn {
    int fd = -1;
    std::uint64_t sent = 0;
    std::string reply;
    bool done = false;
  };
  std::vector<SinkConn> conns;
  for (int i = 0; i < o.conns; ++i) {
    conns.emplace_back();
    conns.back().fd = start_connect(o.port);
    ep.add(conns.back().fd, EPOLLOUT, static_cast<std::uint64_t>(i));
  }
  std::vector<epoll_event> events(64);
  const std::uint64_t warm_end = now_ns() + static_cast<std::uint64_t>(o.warmup * 1e9);
  const std::uint64_t end = warm_end + static_cast<std::uint64_t>(o.seconds * 1e9);
  std::uint64_t sent_total = 0;
  bool measuring = false, writing = true;
  Window w;
  std::uint64_t drain_deadline = 0;
  for (;;) {
    const std::uint64_t t = now_ns();
    if (!measuring && writing && t >= warm_end) {
      measuring = true;
      w.t0 = t, w.bytes0 = sent_total, w.cpu0 = thread_cpu(o.server_pid);
    }
    if (measuring && t >= end) {
      // The window ends when the server's count is in; what is still in flight is counted
      // by then, so stop writing and wait for the replies.
      measuring = false;
      writing = false;
      for (std::size_t i = 0; i < conns.size(); ++i) {
        shutdown(conns[i].fd, SHUT_WR);
        ep.mod(conns[i].fd, EPOLLIN, i);
      }
      drain_deadline = t + 5000000000ull;
    }
    if (!writing) {
      bool all = true;
      for (auto& c : conns) all = all && c.done;
      if (all) {
        w.t1 = now_ns(), w.bytes1 = sent_total, w.cpu1 = thread_cpu(o.server_pid);
        break;
      }
      if (t > drain_deadline) fail("sink: no byte count from the server 5 s after the end");
    }
    const int n = ep.wait(events.data(), static_cast<int>(events.size()), 10);
    for (int i = 0; i < n; ++i) {
      SinkConn& c = conns[events[static_cast<std::size_t>(i)].data.u64];
      const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
      if (writing && (ev & EPOLLOUT)) {
        for (int k = 0; k < 16; ++k) {  // a bounded burst, then let the others write
          const std::size_t pos = static_cast<std::size_t>(c.sent % o.size);
          const ssize_t r = write(c.fd, table.data() + pos, o.size - pos);
          if (r < 0) {
            if (errno == EAGAIN) break;
            die("write");
          }
          c.sent += static_cast<std::uint64_t>(r);
          sent_total += static_cast<std::uint64_t>(r);
        }
      }
      if (!writing && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c.done) {
        char rb[64];
        const ssize_t r = read(c.fd, rb, sizeof rb);
        if (r < 0 && errno != EAGAIN) die("read");
        if (r > 0) c.reply.append(rb, static_cast<std::size_t>(r));
        if (r == 0) {
          c.done = true;
          if (std::strtoull(c.reply.c_str(), nullptr, 10) != c.sent || c.reply.empty())
            fail("sink: the server counted '" + c.reply + "' bytes, " + std::to_string(c.sent) +
                 " were sent");
          close(c.fd);
        }
      }
    }
  }
  w.msgs0 = w.bytes0 / o.size;
  w.msgs1 = w.bytes1 / o.size;
  report(o, w, nullptr, "msgs");
  return 0;
}

// --- connection rate --------------------------------------------------------------------

int run_connrate(const Options& o) {
  constexpr std::size_t kMsg = 32;
  make_table(kMsg);
  Epoll ep;
  struct Slot {
    int fd = -1;
    bool connected = false;
    std::size_t got = 0;
    std::uint64_t started = 0;
    unsigned char buf[kMsg];
  };
  std::vector<Slot> slots(static_cast<std::size_t>(o.conns));
  auto open_slot = [&](std::size_t i) {
    Slot& s = slots[i];
    s.fd = start_connect(o.port);
    s.connected = false;
    s.got = 0;
    s.started = now_ns();
    ep.add(s.fd, EPOLLOUT, i);
  };
  for (std::size_t i = 0; i < slots.size(); ++i) open_slot(i);
  std::vector<epoll_event> events(64);
  const std::uint64_t warm_end = now_ns() + static_cast<std::uint64_t>(o.warmup * 1e9);
  const std::uint64_t end = warm_end + static_cast<std::uint64_t>(o.seconds * 1e9);
  std::uint64_t done = 0;
  bool measuring = false;
  Latency lat;
  Window w;
  for (;;) {
    const std::uint64_t t = now_ns();
    if (!measuring && t >= warm_end && w.t0 == 0) {
      measuring = true;
      w.t0 = t, w.msgs0 = done, w.cpu0 = thread_cpu(o.server_pid);
    }
    if (measuring && t >= end) {
      w.t1 = t, w.msgs1 = done, w.cpu1 = thread_cpu(o.server_pid);
      break;
    }
    const int n = ep.wait(events.data(), static_cast<int>(events.size()), 10);
    for (int i = 0; i < n; ++i) {
      const std::size_t idx = events[static_cast<std::size_t>(i)].data.u64;
      Slot& s = slots[idx];
      if (!s.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          errno = err;
          die("connect (connrate)");
        }
        s.connected = true;
        if (write(s.fd, table.data(), kMsg) != static_cast<ssize_t>(kMsg)) die("write (connrate)");
        ep.mod(s.fd, EPOLLIN, idx);
        continue;
      }
      const ssize_t r = read(s.fd, s.buf + s.got, kMsg - s.got);
      if (r < 0) {
        if (errno == EAGAIN) continue;
        die("read (connrate)");
      }
      if (r == 0) fail("connrate: closed before the echo");
      s.got += static_cast<std::size_t>(r);
      if (s.got < kMsg) continue;
      if (std::memcmp(s.buf, table.data(), kMsg) != 0) fail("connrate: wrong echo");
      close(s.fd);
      ++done;
      if (measuring) lat.add(now_ns() - s.started);
      open_slot(idx);
    }
  }
  for (auto& s : slots) close(s.fd);
  report(o, w, &lat, "conns_done");
  return 0;
}

// --- idle connections ---------------------------------------------------------------------

int run_idle(const Options& o) {
  if (o.server_pid <= 0) {
    std::fprintf(stderr, "loadgen: idle mode needs --server-pid\n");
    return 2;
  }
  constexpr std::size_t kMsg = 16;
  make_table(kMsg);
  const long before = rss_kib(o.server_pid);
  Epoll ep;
  struct Idle {
    int fd = -1;
    int state = 0;  // 0 connecting, 1 waiting for the echo, 2 done
    std::size_t got = 0;
  };
  std::vector<Idle> conns(static_cast<std::size_t>(o.conns));
  std::size_t next = 0, in_progress = 0, finished = 0;
  std::vector<epoll_event> events(256);
  const std::uint64_t deadline = now_ns() + 60000000000ull;
  while (finished < conns.size()) {
    while (next < conns.size() && in_progress < 256) {  // stay well under the backlog
      conns[next].fd = start_connect(o.port);
      ep.add(conns[next].fd, EPOLLOUT, next);
      ++next, ++in_progress;
    }
    if (now_ns() > deadline) fail("idle: connections not all echoed within 60 s");
    const int n = ep.wait(events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      const std::size_t idx = events[static_cast<std::size_t>(i)].data.u64;
      Idle& c = conns[idx];
      if (c.state == 0) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          errno = err;
          die("connect (idle)");
        }
        if (write(c.fd, table.data(), kMsg) != static_cast<ssize_t>(kMsg)) die("write (idle)");
        c.state = 1;
        ep.mod(c.fd, EPOLLIN, idx);
        continue;
      }
      unsigned char b[kMsg];
      const ssize_t r = read(c.fd, b, kMsg - c.got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fail("idle: connection closed before its echo");
      }
      c.got += static_cast<std::size_t>(r);
      if (c.got == kMsg) {
        c.state = 2;
        ep.mod(c.fd, 0, idx);
        --in_progress, ++finished;
      }
    }
  }
  const long after = rss_kib(o.server_pid);
  long after_burst = after;
  if (o.burst > 0) {
    // Each connection writes o.burst bytes and reads its echo concurrently (a server that
    // stops reading while its answer waits must still be served).
    struct Burst {
      std::size_t sent = 0, got = 0;
    };
    std::vector<Burst> st(conns.size());
    std::vector<char> wbuf(64 * 1024, 'b'), rbuf(256 * 1024);
    std::size_t nextb = 0, active = 0, doneb = 0;
    const std::uint64_t burst_deadline = now_ns() + 300000000000ull;
    while (doneb < conns.size()) {
      while (nextb < conns.size() && active < 32) {
        ep.mod(conns[nextb].fd, EPOLLIN | EPOLLOUT, nextb);
        ++nextb, ++active;
      }
      if (now_ns() > burst_deadline) fail("idle: bursts not all echoed within 300 s");
      const int n = ep.wait(events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        const epoll_event& ev = events[static_cast<std::size_t>(i)];
        const std::size_t idx = ev.data.u64;
        Burst& b = st[idx];
        const int fd = conns[idx].fd;
        if ((ev.events & EPOLLOUT) != 0 && b.sent < o.burst) {
          const ssize_t w = write(fd, wbuf.data(), std::min(wbuf.size(), o.burst - b.sent));
          if (w > 0) b.sent += static_cast<std::size_t>(w);
          else if (errno != EAGAIN) die("write (burst)");
          if (b.sent == o.burst) ep.mod(fd, EPOLLIN, idx);
        }
        if ((ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
          const ssize_t r = read(fd, rbuf.data(), rbuf.size());
          if (r == 0 || (r < 0 && errno != EAGAIN)) fail("idle: connection closed in its burst");
          if (r > 0) b.got += static_cast<std::size_t>(r);
          if (b.got >= o.burst) {
            if (b.got > o.burst) fail("idle: more echoed than sent");
            ep.mod(fd, 0, idx);
            --active, ++doneb;
          }
        }
      }
    }
    after_burst = rss_kib(o.server_pid);
  }
  std::printf("mode=idle conns=%d rss_before_kib=%ld rss_after_kib=%ld bytes_per_conn=%.0f "
              "burst=%zu rss_after_burst_kib=%ld bytes_per_conn_after_burst=%.0f\n",
              o.conns, before, after,
              static_cast<double>(after - before) * 1024.0 / static_cast<double>(o.conns),
              o.burst, after_burst,
              static_cast<double>(after_burst - before) * 1024.0 / static_cast<double>(o.conns));
  for (auto& c : conns) close(c.fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--port" && has) o.port = std::atoi(argv[++i]);
    else if (a == "--mode" && has) o.mode = argv[++i];
    else if (a == "--conns" && has) o.conns = std::atoi(argv[++i]);
    else if (a == "--depth" && has) o.depth = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--size" && has) o.size = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--seconds" && has) o.seconds = std::atof(argv[++i]);
    else if (a == "--warmup" && has) o.warmup = std::atof(argv[++i]);
    else if (a == "--server-pid" && has) o.server_pid = std::atoi(argv[++i]);
    else if (a == "--burst" && has) o.burst = std::strtoul(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr,
                   "usage: %s --port P [--mode echo|sink|connrate|idle] [--conns C] [--depth D]\n"
                   "          [--size S] [--seconds T] [--warmup W] [--server-pid PID]"
                   " [--burst B]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.port <= 0 || o.port > 65535 || o.conns <= 0 || o.depth == 0 || o.size == 0 ||
      o.size > (1u << 24) || o.seconds <= 0) {
    std::fprintf(stderr, "loadgen: bad arguments (port 1..65535, conns/depth/size/seconds > 0)\n");
    return 2;
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (o.mode == "echo") return run_echo(o);
  if (o.mode == "sink") return run_sink(o);
  if (o.mode == "connrate") return run_connrate(o);
  if (o.mode == "idle") return run_idle(o);
  std::fprintf(stderr, "loadgen: unknown mode '%s'\n", o.mode.c_str());
  return 2;
}
