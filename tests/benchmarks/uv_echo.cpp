// uv_echo [--port N] [--sink]: the libuv baseline, the C event loop to beat. One loop, one
// 64 KiB read buffer per connection; an echo is tried at once with uv_try_write and only
// what the kernel does not take is copied into a uv_write request. With --sink it discards
// what it reads and answers end of file with the decimal count of bytes received.
// Prints "listening on 127.0.0.1:PORT" first, like examples/echo_server.

#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "floor_common.hpp"

namespace {

bool sink = false;

struct Conn {
  uv_tcp_t handle;
  std::size_t count = 0;
  char buf[64 * 1024];
};

struct Write {
  uv_write_t req;
  std::string data;
};

Conn* conn_of(uv_handle_t* h) { return static_cast<Conn*>(h->data); }

void on_close(uv_handle_t* h) { delete conn_of(h); }

void on_written(uv_write_t* req, int) {
  delete static_cast<Write*>(req->data);
}

void on_reply_written(uv_write_t* req, int) {
  uv_close(reinterpret_cast<uv_handle_t*>(req->handle), on_close);
  delete static_cast<Write*>(req->data);
}

void write_rest(uv_stream_t* stream, const char* data, std::size_t n) {
  uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(n));
  const int done = uv_try_write(stream, &b, 1);
  std::size_t taken = done > 0 ? static_cast<std::size_t>(done) : 0;
  if (taken == n) return;
  auto* w = new Write;
  w->req.data = w;
  w->data.assign(data + taken, n - taken);
  uv_buf_t rest = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, stream, &rest, 1, on_written) != 0) delete w;
}

void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* out) {
  *out = uv_buf_init(conn_of(h)->buf, sizeof conn_of(h)->buf);
}

void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* b) {
  Conn* c = conn_of(reinterpret_cast<uv_handle_t*>(stream));
  if (n < 0) {
    if (n == UV_EOF && sink) {  // answer with the count, then close
      auto* w = new Write;
      w->req.data = w;
      w->data = std::to_string(c->count);
      uv_buf_t reply = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
      if (uv_write(&w->req, stream, &reply, 1, on_reply_written) == 0) return;
      delete w;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(stream), on_close);
    return;
  }
  if (sink) {
    c->count += static_cast<std::size_t>(n);
    return;
  }
  if (n > 0) write_rest(stream, b->base, static_cast<std::size_t>(n));
}

void on_connection(uv_stream_t* server, int status) {
  if (status != 0) return;
  auto* c = new Conn;
  uv_tcp_init(server->loop, &c->handle);
  c->handle.data = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->handle)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), on_close);
    return;
  }
  uv_tcp_nodelay(&c->handle, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->handle), on_alloc, on_read);
}

}  // namespace

int main(int argc, char** argv) {
  const floor_server::Options options = floor_server::parse_options(argc, argv);
  const int port = options.port;
  sink = options.sink;
  floor_server::raise_descriptor_limit();
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&addr), 0) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&server), 4096, on_connection) != 0) {
    std::fprintf(stderr, "uv_echo: cannot listen on port %d\n", port);
    return 1;
  }
  sockaddr_in bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &len);
  floor_server::print_listening(ntohs(bound.sin_port));
  return uv_run(loop, UV_RUN_DEFAULT);
}
