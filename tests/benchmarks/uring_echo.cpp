// uring_echo [--port N] [--sink]: the io_uring floor, beside epoll_echo. A minimal echo
// server on liburing: each connection has one recv or one send in flight at a time (recv
// into the connection's buffer, send what it read, recv again), and the loop makes one
// io_uring_submit_and_wait per turn, which submits every request queued since the last
// one and reaps every completion ready; the ring is set up with IORING_SETUP_COOP_TASKRUN,
// as torsion's is (framework/detail/io_uring_sqe.hpp). With --sink it discards what it
// reads and answers end of file with the decimal count of bytes received.
// Prints "listening on 127.0.0.1:PORT" first, like examples/echo_server.

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "floor_common.hpp"

namespace {

struct Conn {
  int fd = -1;
  char buf[64 * 1024];
  std::size_t sent = 0, size = 0;  // the send in flight: buf[sent, size)
  std::size_t count = 0;           // --sink: bytes received
  std::string reply;               // --sink: the count, sent at end of file
  bool closing = false;
};

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "%s: %s\n", what, std::strerror(err));
  std::exit(1);
}

io_uring ring;

io_uring_sqe* sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring);
  if (s == nullptr) {  // the queue is full: submit what waits and take a fresh entry
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
    if (s == nullptr) die("io_uring_get_sqe", EBUSY);
  }
  return s;
}

// user_data: a Conn pointer, or 0 for the listening socket's accept.
void queue_recv(Conn* c) {
  io_uring_sqe* s = sqe();
  io_uring_prep_recv(s, c->fd, c->buf, sizeof c->buf, 0);
  io_uring_sqe_set_data(s, c);
}

void queue_send(Conn* c, const char* data) {
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, c->fd, data + c->sent, c->size - c->sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, c);
}

void queue_accept(int lfd) {
  io_uring_sqe* s = sqe();
  io_uring_prep_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data(s, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  const floor_server::Options options = floor_server::parse_options(argc, argv);
  const bool sink = options.sink;
  floor_server::raise_descriptor_limit();
  // Completions' work in the kernel runs when the loop enters it (each turn) instead of
  // interrupting the thread: 5.19 on, else the plain ring. Without it this server cost
  // ~1.25x the epoll floor's CPU per message here (README, performance section).
  int rc = io_uring_queue_init(4096, &ring, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  if (rc == -EINVAL) rc = io_uring_queue_init(4096, &ring, 0);
  if (rc < 0) die("io_uring_queue_init", -rc);
  const int lfd = floor_server::listen_loopback(options.port, 0);
  const int one = 1;

  queue_accept(lfd);
  auto finish = [](Conn* c) {
    close(c->fd);
    delete c;
  };
  for (;;) {
    const int w = io_uring_submit_and_wait(&ring, 1);  // the one submit of this turn
    if (w < 0 && w != -EINTR) die("io_uring_submit_and_wait", -w);
    unsigned head = 0, seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const int res = cqe->res;
      auto* c = static_cast<Conn*>(io_uring_cqe_get_data(cqe));
      if (c == nullptr) {  // accept
        if (res >= 0) {
          setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* conn = new Conn;
          conn->fd = res;
          queue_recv(conn);
        }
        queue_accept(lfd);
        continue;
      }
      if (c->size > 0) {  // a send completed
        if (res < 0) {
          finish(c);
          continue;
        }
        c->sent += static_cast<std::size_t>(res);
        if (c->sent < c->size) {
          queue_send(c, c->closing ? c->reply.data() : c->buf);
          continue;
        }
        c->sent = c->size = 0;
        if (c->closing) finish(c);
        else queue_recv(c);
        continue;
      }
      // a recv completed
      if (res < 0) {
        finish(c);
        continue;
      }
      if (res == 0) {
        if (!sink) {
          finish(c);
          continue;
        }
        c->reply = std::to_string(c->count);
        c->closing = true;
        c->size = c->reply.size();
        queue_send(c, c->reply.data());
        continue;
      }
      if (sink) {
        c->count += static_cast<std::size_t>(res);
        queue_recv(c);
        continue;
      }
      c->size = static_cast<std::size_t>(res);
      queue_send(c, c->buf);
    }
    io_uring_cq_advance(&ring, seen);
  }
}
