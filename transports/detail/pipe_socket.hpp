#pragma once
// Private: the socket-like object StreamEngine runs on for descriptors that are not
// sockets: this process's stdin/stdout (stdio.cpp) and a child's pipes (process.cpp).
// It reads from one descriptor and writes to another; either may be absent:
//   stdio:         input = fd 0's duplicate, output = fd 1's duplicate
//   child stdin:   no input,  output = the pipe's write end
//   child stdout:  input = the pipe's read end, no output (and the same for stderr)
// "shutdown send" closes the output; socket options do not apply.
//
// Write-only (no input): the engine's read loop still runs, and is how it learns that the
// reader went away: a pipe's write end reports an error condition (EPOLLERR) when its
// last reader closes, which completes a readable wait on it; read_some then reports EOF
// (poll() shows POLLERR) or would_block (spurious), so the engine treats the reader's
// departure as the peer's end-of-file.
//
// Writes never raise SIGPIPE in this process: a closed reader is EPIPE, which the engine
// turns into connection_lost, as for a socket.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/socket_base.hpp>
#include <cerrno>
#include <cstddef>
#include <system_error>
#include <utility>

#include "transports/detail/no_sigpipe.hpp"

namespace torsion::detail {

// Writes without letting a closed read end raise SIGPIPE in this process (no_sigpipe.hpp).
inline ::ssize_t writev_no_sigpipe(int fd, const ::iovec* iov, int count) {
  std::size_t offered = 0;
  for (int i = 0; i < count; ++i) offered += iov[i].iov_len;
  return without_sigpipe(offered, [&] {
    ::ssize_t n;
    do {
      n = ::writev(fd, iov, count);
    } while (n < 0 && errno == EINTR);
    return n;
  });
}

class PipeSocket {
 public:
  using Descriptor = asio::posix::stream_descriptor;
  static constexpr Descriptor::wait_type wait_read = Descriptor::wait_read;
  static constexpr Descriptor::wait_type wait_write = Descriptor::wait_write;
  using executor_type = Descriptor::executor_type;

  // Takes ownership of `in` and `out` (-1 for none). With `restore`, each descriptor's
  // O_NONBLOCK flag (which lives in the file description, shared with other descriptors
  // for it) is put back as it was found when it is closed.
  PipeSocket(asio::io_context& io, int in, int out, bool restore)
      : in_(io, in, restore), out_(io, out, restore) {}
  PipeSocket(PipeSocket&&) noexcept = default;

  executor_type get_executor() { return (in_.d.is_open() ? in_ : out_).d.get_executor(); }
  bool is_open() const { return in_.d.is_open() || out_.d.is_open(); }
  int native_handle() { return in_.d.is_open() ? in_.d.native_handle() : out_.d.native_handle(); }

  void non_blocking(bool mode, std::error_code& ec) {
    ec.clear();
    if (in_.d.is_open()) in_.d.non_blocking(mode, ec);
    if (!ec && out_.d.is_open()) out_.d.non_blocking(mode, ec);
  }

  template <class Buffers>
  std::size_t read_some(const Buffers& buffers, std::error_code& ec) {
    if (in_.d.is_open()) return in_.d.read_some(buffers, ec);
    // Write-only: "readable" means the reader may be gone (see the top of the file).
    if (reader_gone())
      ec = asio::error::eof;
    else
      ec = asio::error::would_block;
    return 0;
  }

  template <class Buffers>
  std::size_t write_some(const Buffers& buffers, std::error_code& ec) {
    ec.clear();
    if (!out_.d.is_open()) {
      ec = asio::error::broken_pipe;
      return 0;
    }
    ::iovec iov[64];
    int count = 0;
    for (auto it = asio::buffer_sequence_begin(buffers);
         it != asio::buffer_sequence_end(buffers) && count < 64; ++it) {
      const asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      iov[count].iov_base = const_cast<void*>(b.data());
      iov[count].iov_len = b.size();
      ++count;
    }
    if (count == 0) return 0;
    const ::ssize_t n = writev_no_sigpipe(out_.d.native_handle(), iov, count);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      ec = asio::error::would_block;
    else
      ec = std::error_code(errno, asio::error::get_system_category());
    return 0;
  }

  // Readable is the input's (or, write-only, the output's error condition), writable the
  // output's.
  template <class Handler>
  void async_wait(Descriptor::wait_type w, Handler&& handler) {
    Restoring& side = (w == wait_read && in_.d.is_open()) ? in_ : out_;
    side.d.async_wait(w, std::forward<Handler>(handler));
  }

  void shutdown(asio::socket_base::shutdown_type, std::error_code& ec) { out_.close(ec); }

  template <class Option>
  void set_option(const Option&, std::error_code& ec) {
    ec.clear();
  }

  void cancel(std::error_code& ec) {
    std::error_code ignored;
    if (out_.d.is_open()) out_.d.cancel(ignored);
    if (in_.d.is_open()) in_.d.cancel(ec);
  }

  void close(std::error_code& ec) {
    std::error_code ignored;
    out_.close(ignored);
    in_.close(ec);
  }

 private:
  // A descriptor that may put its O_NONBLOCK flag back as found when it is closed.
  struct Restoring {
    Descriptor d;
    int original_flags = -1;

    Restoring(asio::io_context& io, int fd, bool restore) : d(io) {
      if (fd < 0) return;
      if (restore) original_flags = ::fcntl(fd, F_GETFL);
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

  // True when the output is a pipe whose last reader has closed.
  bool reader_gone() {
    if (!out_.d.is_open()) return true;
    ::pollfd p{out_.d.native_handle(), POLLOUT, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0;
  }

  Restoring in_;
  Restoring out_;
};

}  // namespace torsion::detail
