#include "transports/stdio.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <stdexcept>
#include <string>
#include <system_error>

#include "transports/detail/pipe_socket.hpp"
#include "transports/detail/stream_engine.hpp"

namespace torsion {
namespace {

// The engine runs on a PipeSocket that puts each descriptor's O_NONBLOCK flag back as it
// was found (the flag lives in the file description, shared with fd 0 or 1).
using StdioTransport = detail::StreamEngine<detail::PipeSocket>;

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
      reactor, detail::PipeSocket(reactor.context(), in, out, true), Address(), Address());
  asio::post(reactor.context(), [transport, p = std::move(protocol)]() mutable {
    transport->start(std::move(p));
  });
  return transport;
}

}  // namespace torsion
