#include "transports/stdio.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <stdexcept>
#include <string>
#include <system_error>

#include "transports/detail/stream_engine.hpp"

namespace torsion {
namespace {

using Descriptor = asio::posix::stream_descriptor;

// A descriptor whose O_NONBLOCK flag is put back as it was found when it is closed
// (the flag lives in the file description, shared with the process's own fd 0 or 1).
struct Restoring {
  Descriptor d;
  int original_flags = -1;

  Restoring(asio::io_context& io, int fd) : d(io) {
    original_flags = ::fcntl(fd, F_GETFL);
    d.assign(fd);
  }
  Restoring(Restoring&&) noexcept = default;
  Restoring& operator=(Restoring&&) noexcept = default;
  ~Restoring() {
    std::error_code ec;
    close(ec);
  }

  void close(std::error_code& ec) {
    if (!d.is_open()) return;
    if (original_flags >= 0) ::fcntl(d.native_handle(), F_SETFL, original_flags);
    d.close(ec);
  }
};

// The socket-like pair StreamEngine runs on: reads from one descriptor, writes to
// another; "shutdown send" closes the output; socket options do not apply.
class StdioSocket {
 public:
  static constexpr Descriptor::wait_type wait_read = Descriptor::wait_read;
  static constexpr Descriptor::wait_type wait_write = Descriptor::wait_write;
  using executor_type = Descriptor::executor_type;

  StdioSocket(asio::io_context& io, int in, int out) : in_(io, in), out_(io, out) {}
  StdioSocket(StdioSocket&&) noexcept = default;

  executor_type get_executor() { return in_.d.get_executor(); }
  bool is_open() const { return in_.d.is_open() || out_.d.is_open(); }
  int native_handle() { return in_.d.is_open() ? in_.d.native_handle() : out_.d.native_handle(); }

  void non_blocking(bool mode, std::error_code& ec) {
    in_.d.non_blocking(mode, ec);
    if (!ec) out_.d.non_blocking(mode, ec);
  }

  template <class Buffers>
  std::size_t read_some(const Buffers& buffers, std::error_code& ec) {
    return in_.d.read_some(buffers, ec);
  }

  template <class Buffers>
  std::size_t write_some(const Buffers& buffers, std::error_code& ec) {
    if (!out_.d.is_open()) {
      ec = asio::error::broken_pipe;
      return 0;
    }
    return out_.d.write_some(buffers, ec);
  }

  // Readable is the input's, writable the output's.
  template <class Handler>
  void async_wait(Descriptor::wait_type w, Handler&& handler) {
    (w == wait_read ? in_ : out_).d.async_wait(w, std::forward<Handler>(handler));
  }

  void shutdown(asio::socket_base::shutdown_type, std::error_code& ec) { out_.close(ec); }

  template <class Option>
  void set_option(const Option&, std::error_code& ec) {
    ec.clear();
  }

  void close(std::error_code& ec) {
    std::error_code ignored;
    out_.close(ignored);
    in_.close(ec);
  }

 private:
  Restoring in_;
  Restoring out_;
};

using StdioTransport = detail::StreamEngine<StdioSocket>;

int duplicate(int fd, const char* which) {
  if (fd < 0)
    throw std::invalid_argument(std::string("connect_stdio: negative ") + which +
                                " descriptor " + std::to_string(fd));
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0)
    throw std::system_error(errno, std::system_category(),
                            std::string("connect_stdio: duplicating the ") + which +
                                " descriptor " + std::to_string(fd));
  return dup;
}

}  // namespace

std::shared_ptr<Transport> connect_stdio(Reactor& reactor, std::unique_ptr<Protocol> protocol,
                                         const StdioOptions& options) {
  if (!protocol) throw std::invalid_argument("connect_stdio: null protocol");
  const int in = duplicate(options.input_fd, "input");
  int out = -1;
  try {
    out = duplicate(options.output_fd, "output");
  } catch (...) {
    ::close(in);
    throw;
  }
  auto transport = std::make_shared<StdioTransport>(
      reactor, StdioSocket(reactor.context(), in, out), Address(), Address());
  asio::post(reactor.context(), [transport, p = std::move(protocol)]() mutable {
    transport->start(std::move(p));
  });
  return transport;
}

}  // namespace torsion
