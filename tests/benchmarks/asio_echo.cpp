// asio_echo [--port N] [--sink] [--threads N]: the raw-Asio baseline, written the way the Asio
// examples teach: one io_context on one thread, a session object per connection kept alive by
// the shared_ptr its pending handler holds, read_some -> async_write the bytes -> read again.
// With --threads N it runs N such io_contexts, each on its own thread with its own
// SO_REUSEPORT acceptor on the one port: the baseline for torsion's ReactorPool.
// With --sink it discards what it reads and, at end of file, answers with the decimal
// count of bytes received (loadgen's sink mode checks it).
// Prints "listening on 127.0.0.1:PORT" first, like examples/echo_server.

#include <sys/resource.h>

#include <array>
#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, bool sink) : socket_(std::move(socket)), sink_(sink) {}

  void start() {
    socket_.set_option(tcp::no_delay(true));
    read();
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec,
                                                                           std::size_t n) {
      if (ec) {
        if (ec == asio::error::eof && self->sink_) self->send_count();
        return;
      }
      if (self->sink_) {
        self->count_ += n;
        self->read();
        return;
      }
      asio::async_write(self->socket_, asio::buffer(self->buf_.data(), n),
                        [self](std::error_code wec, std::size_t) {
                          if (!wec) self->read();
                        });
    });
  }

  void send_count() {
    reply_ = std::to_string(count_);
    asio::async_write(socket_, asio::buffer(reply_), [self = shared_from_this()](std::error_code,
                                                                                std::size_t) {
      std::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
    });
  }

  tcp::socket socket_;
  bool sink_;
  std::array<char, 64 * 1024> buf_;  // not zeroed: untouched pages cost no memory
  std::size_t count_ = 0;
  std::string reply_;
};

void accept(tcp::acceptor& acceptor, bool sink) {
  acceptor.async_accept([&acceptor, sink](std::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<Session>(std::move(socket), sink)->start();
    accept(acceptor, sink);
  });
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  bool sink = false;
  std::size_t threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--sink") == 0) {
      sink = true;
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::strtoul(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--sink] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (threads == 0) {
    asio::io_context io(1);
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                             static_cast<unsigned short>(port)));
    std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    accept(acceptor, sink);
    io.run();
    return 0;
  }
  // One io_context, thread and SO_REUSEPORT acceptor each; the kernel spreads connections.
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  for (std::size_t i = 0; i < threads; ++i) {
    ios.push_back(std::make_unique<asio::io_context>(1));
    auto a = std::make_unique<tcp::acceptor>(*ios.back());
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    a->open(ep.protocol());
    a->set_option(tcp::acceptor::reuse_address(true));
    a->set_option(reuse_port(true));
    a->bind(ep);
    a->listen();
    port = a->local_endpoint().port();  // port 0: the others join the one the kernel picked
    accept(*a, sink);
    acceptors.push_back(std::move(a));
  }
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (auto& io : ios) workers.emplace_back([&io] { io->run(); });
  for (auto& w : workers) w.join();
}
