#pragma once
// Private: the one implementation of the read loop and write queue behind every stream
// transport (TCP, Unix). It differs per transport only in the Asio socket type.
//
// Life cycle: one small state per direction (read_, write_); the two end independently
// (half-close), and the connection is open while the write side is not closing or closed.
//
//   write side (WriteState):
//     open --lose_write_connection--> shutting --queue drained--> shut (FIN sent)
//      |                                 |                          |
//      +------------ lose_connection ----+--------------------------+--> closing
//     closing --queue drained--> closed          any --abort / error--> closed
//
//   read side (ReadState):
//     open <--pause_producing / resume_producing--> paused
//     open or paused --the peer's EOF handled--> eof   (eof_received is told; never read again)
//     any --lose_connection, abort, error, close--> closed   (we read no more)
//
// Reading happens while the read side is open, the marks do not hold it (FlowControl) and
// no data_received is running. The EOF on a shut write side (or a shut on an EOF) ends
// both directions: the transport closes cleanly. Once the write side is closed, the socket
// is closed and finish() is posted: connection_lost runs from the loop, exactly once
// (finished_). Every pending Asio operation holds a shared_ptr to the transport, so it
// outlives them all. The remaining flags are facts of their own: an Asio operation
// pending (read_armed_, write_waiting_, pull_posted_), a callback running (delivering_),
// writes held for the turn's end (corked_).
//
// Corking: one send per batch. Inside data_received every write is held in the queue
// (corked_) and what was written leaves in one gathered send when data_received returns,
// the first write included: a request answered with one write costs one send, a pipelined
// batch answered with many costs one send too. Outside data_received the same holds per
// turn of the loop (framework/detail/turn.hpp: one call_soon batch, the timers due
// together, a stream engine's delivery or other completion, connection_made): the
// first write of a turn corks and asks to be told when the turn ends (TurnEndHook), which
// happens before the loop gets control back: no post, no allocation. Outside any turn
// (code outside the loop, handlers of other transports or of raw Asio) every write is sent
// at once, as nothing would end the batch.
// Small writes are copied into the queue; a moved-in string is taken without a copy, so it
// corks whatever its size; a large string_view uncorks first and is sent at once, after
// what was corked. While corked the queue is non-empty with no writable wait armed: every
// write path appends, so order is kept, and lose_connection / lose_write_connection wait
// for the queue as they always do; uncork() finishes them. abort_connection clears the
// queue; the turn's end then finds the transport closed.
//
// Flow control (outgoing): the rules are FlowControl's (framework/detail/flow_control.hpp),
// the same object the testing kit's transports use. Every write path ends in after_write(),
// which pauses a streaming producer above the high mark or, with no producer registered and
// the write made inside data_received, holds reading back until the low mark (back-pressure
// by default; set_pause_reading_when_full(false) turns it off); on_writable() and uncork()
// check the low mark. The engine only says from where: held reading restarts with a posted
// read, a pull producer is asked from the loop.
//
// Files (FileWriter): write_file queues a file region in the same queue, behind what was
// written, and flush() sends it with sendfile(2) when it reaches the front. It corks,
// counts and closes exactly as a write of its length does. Only socket transports offer
// it (file_writer()); stdio's descriptors do not.
//
// Pipes (PipeReader, file_region.hpp): with a PipeSink set, a read moves the peer's bytes
// into the sink's pipe with splice(2) and the sink hears piped(n) where data_received
// would be; a FileWriter queues them as a pipe region, sent with splice(2) as a file
// region is with sendfile. A read with no room offered, or one that finds the pipe full,
// is an ordinary read (the relay's bytes take the buffered path for that read).
//
// Reading: see "reading" below; a connection owns no read buffer (read_buffer.hpp).
//
// Descriptors (Unix sockets only, transports/descriptors.hpp): send_with_descriptors
// queues bytes and remembers at which stream offset their descriptors go
// (pending_fds_); a gathered send stops short of that offset, and the send that starts
// there carries the descriptors (SCM_RIGHTS), so they leave with their first byte and
// the order of writes is kept. Reads use recvmsg with room for
// max_descriptors_per_message; what arrives goes to a DescriptorReceiver protocol just
// before the bytes, and whatever it does not take is closed.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/buffer.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/detail/guard.hpp"
#include "framework/detail/flow_control.hpp"
#include "framework/detail/protocol_scope.hpp"
#include "framework/detail/tracked.hpp"
#include "framework/detail/turn.hpp"
#include "framework/file_region.hpp"
#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/descriptors.hpp"
#include "transports/detail/io_close.hpp"
#include "transports/detail/no_sigpipe.hpp"
#include "transports/detail/read_buffer.hpp"
#include "transports/detail/write_queue.hpp"

namespace torsion::detail {

// How many system calls a stream engine made to write (each send, sendmsg or writev,
// including those the kernel refused): for tests and benchmarks that check how writes are
// coalesced. A plain base, so that dynamic_cast<WriteCounter*>(&transport) finds it
// whatever the socket type.
struct WriteCounter {
  std::uint64_t write_calls = 0;
};

// The reactor a stream engine runs on, for a layer above it that needs the reactor's
// timers and loop (start_tls's close_notify wait, its delivery after resume_producing). A
// plain base, found with dynamic_cast as WriteCounter is.
struct OnReactor {
  explicit OnReactor(Reactor& r) noexcept : home_reactor(r) {}
  Reactor& home_reactor;
};

// Socket transports send file regions (FileWriter) and read into pipes (PipeReader); the
// others (stdio) offer neither, so dynamic_cast<FileWriter*> finds nothing and FileSender
// writes bytes instead.
struct SocketZeroCopy : FileWriter, PipeReader {};
struct NoFileWriter {
  virtual ~NoFileWriter() = default;
  virtual void write_file(FileRegion region) = 0;
  virtual bool read_into_pipe(PipeSink* sink) = 0;
};
template <class Socket>
using FileWriterBase =
    std::conditional_t<requires { typename Socket::protocol_type; }, SocketZeroCopy, NoFileWriter>;

template <class Socket>
class StreamEngine final : public Transport,
                              public FileWriterBase<Socket>,
                              public Tracked,
                              public WriteCounter,
                              public OnReactor,
                              public TurnEndHook,
                              public std::enable_shared_from_this<StreamEngine<Socket>> {
 public:
  using LostHook = std::function<void(const Reason&)>;

  StreamEngine(Reactor& reactor, Socket socket, Address host, Address peer)
      : OnReactor(reactor),
        connections_(reactor.connections()),
        io_(reactor.context()),
        socket_(std::move(socket)),
        host_(std::move(host)),
        peer_(std::move(peer)) {}

  // Who this connection is, for log lines: "conn 7 127.0.0.1:8080 <- 127.0.0.1:40312: ...".
  LogContext log_context() const { return LogContext{id_, host_, peer_}; }

  ~StreamEngine() override {
    drop_pending_fds();
    connections_.unlink(*this);
  }

  // True for Unix stream sockets, the only ones that carry descriptors.
  static constexpr bool kLocal = std::is_same_v<Socket, asio::local::stream_protocol::socket>;
  // True for TCP sockets, which can say with each read what the kernel still holds.
  static constexpr bool kTcp = std::is_same_v<Socket, asio::ip::tcp::socket>;

  // send_descriptors (descriptors.hpp): queues `data` with `fds` (owned from now on,
  // closed once sent or when the connection closes). Unix sockets only.
  void send_with_descriptors(std::vector<int> fds, std::string_view data) {
    static_assert(kLocal);
    if (!writable()) {
      close_all(fds);
      return;
    }
    flow_.wrote();
    pending_fds_.push_back(PendingFds{sent_bytes_ + queue_.size(), std::move(fds)});
    const bool was_empty = queue_.empty();
    queue_.append(data);
    after_append(was_empty);
  }

  // Attaches the protocol, calls connection_made and starts reading. From the loop only.
  // `on_lost` runs after the protocol's connection_lost (client factories use it).
  void start(std::unique_ptr<Protocol> protocol, LostHook on_lost = {}) {
    const TurnScope turn;  // connection_made is a turn of its own
    protocol_ = std::move(protocol);
    on_lost_ = std::move(on_lost);
    self_ = this->shared_from_this();  // alive while open, even with no I/O pending
    connections_.link(*this);
    std::error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) {
      close_hard(Reason::from_os_error(ec, "setting non-blocking mode"));
      return;
    }
    if constexpr (kTcp) {  // without it (an old kernel) every read is followed by another
      const int on = 1;
      inq_ = ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
    }
    if (log_enabled(LogLevel::debug)) log(LogLevel::debug, log_context(), "connection made");
    guarded("connection_made", [&] { protocol_->make_connection(*this); });
    if (want_read()) post_read();
  }

  Socket& socket() noexcept { return socket_; }

  // Transport
  void lose_connection() override {
    if (!open()) return;
    write_ = WriteState::closing;
    read_ = ReadState::closed;
    if (queue_.empty()) close_clean();
  }

  void abort_connection() override { close_hard(Reason(error::connection_aborted)); }

  void lose_write_connection() override {
    if (write_ != WriteState::open) return;
    write_ = WriteState::shutting;
    if (queue_.empty()) shut_write();
  }

  Address get_peer() const override { return peer_; }
  Address get_host() const override { return host_; }
  std::size_t buffer_size() const override { return queue_.size(); }
  bool connected() const override { return open(); }
  int native_handle() const override {
    return const_cast<Socket&>(socket_).is_open() ? const_cast<Socket&>(socket_).native_handle()
                                                  : -1;
  }

  void register_producer(Producer& producer, bool streaming) override {
    flow_.attach(*this, producer, streaming, /*closed=*/closed());
  }

  void unregister_producer() override { flow_.detach(); }

  void set_pause_reading_when_full(bool enabled) override { flow_.set_hold_reads(*this, enabled); }
  bool pauses_reading_when_full() const override { return flow_.hold_reads(); }

  void set_write_buffer_limits(std::size_t high, std::size_t low) override {
    flow_.set_limits(*this, high, low);
  }
  WriteBufferLimits write_buffer_limits() const override { return flow_.limits(); }

  // Producer (incoming data)
  void pause_producing() override {
    if (read_ == ReadState::open) read_ = ReadState::paused;
  }

  void resume_producing() override {
    if (read_ != ReadState::paused) return;
    read_ = ReadState::open;
    if (want_read()) post_read();  // inside data_received, deliver's caller reads on
  }

  void stop_producing() override { lose_connection(); }

  // Tracked
  void lose_tracked() override { lose_connection(); }
  void abort_tracked() override { abort_connection(); }
  void release_tracked() override {
    if (finished_) return;
    read_ = ReadState::closed;
    write_ = WriteState::closed;
    finished_ = true;
    close_socket();
    connections_.unlink(*this);
    auto keep = std::move(self_);  // may destroy *this on return
    // The protocol goes now, not with the last pending operation: its factory may be
    // going (Factory's destructor releases the connections it built).
    auto protocol = std::move(protocol_);
    on_lost_ = nullptr;
  }

 protected:
  void write_bytes(std::string_view data) override {
    if (!writable() || data.empty()) return;
    flow_.wrote();
    if (data.size() > kCorkMax && corked_ && !uncork()) return;  // what was corked goes first
    if (!queue_.empty()) {
      queue_.append(data);  // behind what waits
    } else if (data.size() <= kCorkMax && cork_here()) {
      queue_.append(data);
      corked_ = true;
    } else {
      const std::size_t n = send_now(data.data(), data.size());
      if (closed()) return;
      if (n < data.size()) {
        data.remove_prefix(n);
        queue_.append(data);
        wait_writable();
      }
    }
    after_write();
  }

  // A moved-in string corks whatever its size: the queue takes it without a copy.
  void write_owned(std::string&& data) override {
    if (!writable() || data.empty()) return;
    flow_.wrote();
    if (!queue_.empty()) {
      queue_.append_owned(std::move(data));
    } else if (cork_here()) {
      queue_.append_owned(std::move(data));
      corked_ = true;
    } else {
      const std::size_t n = send_now(data.data(), data.size());
      if (closed()) return;
      if (n < data.size()) {
        queue_.append_owned(std::move(data), n);
        wait_writable();
      }
    }
    after_write();
  }

  // Copied into the queue either way, so it corks whatever its size.
  void write_parts(std::span<const std::string_view> parts) override {
    if (!writable()) return;
    const bool was_empty = queue_.empty();
    for (auto part : parts) queue_.append(part);
    if (queue_.empty()) return;  // nothing but empty parts
    flow_.wrote();
    after_append(was_empty);
  }

  // FileWriter: a file region, queued behind what waits, corked like write_parts.
  void write_file(FileRegion region) override {
    if (!writable() || region.length == 0) return;
    flow_.wrote();
    const bool was_empty = queue_.empty();
    queue_.append_file(std::move(region));
    after_append(was_empty);
  }

  // PipeReader (sockets only): reads go into the sink's pipe while it is set.
  bool read_into_pipe(PipeSink* sink) override {
    if constexpr (!kNativeSend) return false;
    pipe_sink_ = sink;
    return true;
  }

  // TurnEndHook: the turn in which writes were corked outside data_received has ended.
  void turn_ended() noexcept override {
    if (corked_) uncork();
  }

 private:
  // The two directions' states, drawn at the top of the file. Ordered: a write side from
  // `closing` on is no longer open.
  enum class WriteState : std::uint8_t { open, shutting, shut, closing, closed };
  enum class ReadState : std::uint8_t { open, paused, eof, closed };

  bool open() const noexcept { return write_ < WriteState::closing; }
  bool closed() const noexcept { return write_ == WriteState::closed; }
  static constexpr std::size_t kMaxGather = 64;
  static constexpr std::uint64_t kMaxSendfile = 1u << 30;  // per sendfile call
  static constexpr std::uint64_t kCoalesceFile = 64 * 1024;  // see send_gathered
  // string_view writes up to this size made inside data_received or a turn are corked
  // (copied into the queue); larger ones are sent at once, after what was corked.
  static constexpr std::size_t kCorkMax = 4 * 1024;

  bool writable() const noexcept { return write_ == WriteState::open; }

  // Runs a protocol or producer callback; an exception aborts this connection only.
  template <class F>
  void guarded(const char* what, F&& fn) {
    run_guarded(fn, [&](const char* text, const std::exception_ptr& thrown) {
      log(LogLevel::error, log_context(), exception_in(what, text) + "; aborting the connection");
      close_hard(Reason(error::callback_threw, {},
                        text ? std::string(what) + ": " + text : std::string(what), thrown));
    });
  }

  // --- reading -------------------------------------------------------------------
  // Reads go into the thread's ReadLease (read_buffer.hpp) and are delivered at once, so a
  // connection holds no read memory of its own. A read is tried from the loop (post_read),
  // behind the handlers ready now, when the peer has often answered already; if the socket
  // is empty it waits for readable (wait_readable) and tries again. Over TCP each read also
  // tells (TCP_INQ) whether the kernel holds more, a FIN included. When it does not, the
  // next read is still tried from the loop while such late tries find bytes (on a busy
  // reactor the peer has answered by then: one recvmsg, no wait), and after one that finds
  // the socket empty the engine waits for readable at once for the next 1, 3, 7, ... up to
  // 63 drained reads before trying again (a slow or quiet peer: almost no read that
  // returns EAGAIN, one in 64 at worst). A wait is not free: Asio's edge-triggered reactor
  // re-arms each one with an epoll_ctl, so waiting after every drained read cost one
  // system call per message at 50 connections.
  // While reading is paused nothing is read: the bytes and the EOF wait in the kernel,
  // which slows the peer.

  // Reading is wanted: open, not paused (by the protocol or by back-pressure), no EOF yet.
  bool want_read() const noexcept {
    return read_ == ReadState::open && !flow_.read_held() && !delivering_;
  }

  // Tries a read from the loop, unless one is posted or a wait is armed already.
  void post_read() {
    if (read_armed_) return;
    read_armed_ = true;
    // self_ is set while open; copying it is cheaper than shared_from_this().
    asio::post(io_, [self = self_] {
      self->read_armed_ = false;
      self->try_read();
    });
  }

  void wait_readable() {
    read_armed_ = true;
    ++waits_;
    socket_.async_wait(Socket::wait_read, [self = self_](const std::error_code& ec) {
      self->read_armed_ = false;
      self->wait_done();
      if (ec) {
        if (ec != asio::error::operation_aborted && self->open())
          self->close_hard(Reason::from_os_error(ec));
        return;
      }
      self->try_read();
    });
  }

  void try_read() {
    if (!want_read()) return;
    if (pipe_sink_ != nullptr && read_piped()) return;
    const ReadLease lease;
    std::error_code ec;
    ReceivedFds fds;
    std::size_t n = 0;
    bool drained = false;  // the kernel held nothing more after this read, not even a FIN
    if constexpr (kLocal)
      n = receive_with_fds(lease, fds, ec);
    else if constexpr (kTcp)
      n = inq_ ? receive_with_inq(lease, drained, ec)
               : socket_.read_some(asio::buffer(lease.data(), lease.size()), ec);
    else
      n = socket_.read_some(asio::buffer(lease.data(), lease.size()), ec);
    const bool empty = ec == asio::error::would_block || ec == asio::error::try_again;
    if (late_try_) learn_late(empty);
    if (ec) {
      if (empty)
        wait_readable();
      else if (ec == asio::error::eof)
        handle_eof();
      else if (ec != asio::error::interrupted)
        close_hard(Reason::from_os_error(ec));
      else
        post_read();
      return;
    }
    deliver(std::string_view(lease.data(), n), fds);
    if (!want_read()) return;
    // Drained: a read now would return EAGAIN. Waiting for readable is enough, as whatever
    // arrives from now on (bytes or the FIN) signals the socket afresh; a read tried from
    // the loop may find the peer's answer without the wait (see "reading" above).
    if (drained && late_waits_ > 0) {
      --late_waits_;
      wait_readable();
    } else {
      late_try_ = drained;
      post_read();
    }
  }

  // The read tried from the loop after a drained read found bytes (or the end), or found
  // the socket `empty`: how many drained reads wait for readable before the next try.
  void learn_late(bool empty) noexcept {
    late_try_ = false;
    if (!empty) {
      late_misses_ = 0;
      return;
    }
    if (late_misses_ < kMaxLateMisses) ++late_misses_;
    late_waits_ = static_cast<std::uint8_t>((1u << late_misses_) - 1);
  }

  // One recvmsg into the lease, with `control` for what comes with the bytes; `msg` holds
  // it afterwards. As read_some: eof at the end of the stream.
  std::size_t receive_message(const ReadLease& lease, std::span<char> control, int flags,
                              ::msghdr& msg, std::error_code& ec) {
    ::iovec iov{lease.data(), lease.size()};
    msg = ::msghdr{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ::ssize_t n = -1;
    do n = ::recvmsg(socket_.native_handle(), &msg, flags);
    while (n < 0 && errno == EINTR);
    msg.msg_iov = nullptr;  // `iov` ends here; the control part is the caller's
    msg.msg_iovlen = 0;
    if (n < 0) {
      ec = std::error_code(errno, asio::error::get_system_category());
      return 0;
    }
    if (n == 0) ec = asio::error::eof;
    return static_cast<std::size_t>(n);
  }

  // A read that also reports (TCP_INQ) how many bytes the kernel still holds, non-zero
  // after a FIN: `drained` when nothing.
  std::size_t receive_with_inq(const ReadLease& lease, bool& drained, std::error_code& ec) {
    alignas(::cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    ::msghdr msg;
    const std::size_t n = receive_message(lease, control, 0, msg, ec);
    if (ec) return 0;
    for (::cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_TCP || c->cmsg_type != TCP_CM_INQ) continue;
      int left = 1;
      std::memcpy(&left, CMSG_DATA(c), sizeof left);
      drained = left == 0;
    }
    return n;
  }

  // Descriptors from one read; every entry still >= 0 is closed with it.
  struct ReceivedFds {
    int fds[max_descriptors_per_message];
    std::size_t count = 0;
    ReceivedFds() = default;
    ReceivedFds(const ReceivedFds&) = delete;
    ReceivedFds& operator=(const ReceivedFds&) = delete;
    ~ReceivedFds() {
      for (std::size_t i = 0; i < count; ++i)
        if (fds[i] >= 0) ::close(fds[i]);
    }
  };

  // One recvmsg into the lease, with room for max_descriptors_per_message descriptors.
  // As read_some: eof at the end of the stream.
  std::size_t receive_with_fds(const ReadLease& lease, ReceivedFds& out, std::error_code& ec) {
    alignas(::cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_descriptors_per_message)];
    ::msghdr msg;
    const std::size_t n = receive_message(lease, control, MSG_CMSG_CLOEXEC, msg, ec);
    if (ec && ec != asio::error::eof) return 0;
    for (::cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (out.count < max_descriptors_per_message)
          out.fds[out.count++] = fd;
        else
          ::close(fd);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC)
      log(LogLevel::warning, log_context(),
          "the peer sent more than " + std::to_string(max_descriptors_per_message) +
              " descriptors with one message; the kernel closed the rest");
    return n;
  }

  void deliver(std::string_view data, ReceivedFds& fds) {
    delivering([&] {
      if (fds.count > 0)
        if (auto* receiver = dynamic_cast<DescriptorReceiver*>(protocol_.get()))
          guarded("descriptors_received",
                  [&] { receiver->descriptors_received(std::span<int>(fds.fds, fds.count)); });
      if (!closed()) guarded("data_received", [&] { protocol_->data_received(data); });
    });
  }

  // Runs the callbacks of one read as data_received runs: in a turn of its own, with the
  // protocol in scope, writes corked until they return.
  template <class F>
  void delivering(F&& callbacks) {
    const TurnScope turn;  // the callback and the uncork; other transports' corks end with it
    const ProtocolScope scope(protocol_.get());  // binds what it hands out (protocol_scope.hpp)
    delivering_ = true;
    callbacks();
    delivering_ = false;
    if (corked_) uncork();
  }

  // A read into the pipe sink's pipe (PipeReader). True when it is done with (bytes
  // moved and piped() told, the EOF, an error, or a wait for readable armed); false when
  // this read is to be an ordinary one: no room offered, a pipe that may be full, or a
  // socket the kernel cannot splice (the sink is then forgotten).
  bool read_piped() {
    const PipeSink::Room room = pipe_sink_->pipe_room();
    if (room.fd < 0 || room.bytes == 0) return false;
    ::ssize_t n = -1;
    do n = ::splice(socket_.native_handle(), nullptr, room.fd, nullptr, room.bytes,
                    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
      delivering([&] {
        if (!closed()) guarded("piped", [&] { pipe_sink_->piped(static_cast<std::size_t>(n)); });
      });
      if (want_read()) post_read();
    } else if (n == 0) {
      handle_eof();
    } else if (errno == EAGAIN) {
      if (!room.empty) return false;  // the socket is empty or the pipe full: recv tells
      wait_readable();
    } else if (errno == EINVAL || errno == ENOSYS) {
      pipe_sink_ = nullptr;
      return false;
    } else {
      close_hard(Reason::from_os_error(std::error_code(errno, asio::error::get_system_category())));
    }
    return true;
  }

  // The peer closed its write side. The protocol hears it (eof_received) in every case;
  // its answer matters only while our write side is open: false (the default) closes once
  // the queue drains, true keeps writing. If our side was already shut (or is being shut by
  // lose_write_connection), both directions are done and the connection closes cleanly.
  void handle_eof() {
    const TurnScope turn;
    read_ = ReadState::eof;
    bool keep_open = false;
    guarded("eof_received", [&] {
      const ProtocolScope scope(protocol_.get());
      keep_open = protocol_->eof_received();
    });
    if (!open()) return;  // the protocol closed or aborted us meanwhile
    if (write_ != WriteState::open || !keep_open) lose_connection();
  }

  // --- writing -------------------------------------------------------------------

  // Sends what the kernel takes now; returns the count. On a hard error closes.
  std::size_t send_now(const char* data, std::size_t size) {
    ++write_calls;
    std::error_code ec;
    const std::size_t n = socket_.write_some(asio::const_buffer(data, size), ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
      close_hard(Reason::from_os_error(ec));
      return 0;
    }
    if constexpr (kLocal) sent_bytes_ += n;
    return n;
  }

  // Sockets (TCP, Unix) are written with sendmsg on the descriptor: Asio's write_some
  // would need an array of asio::const_buffer, which cannot be left uninitialized, and
  // zeroing 64 of them per call cost more than the send (PROFILE.md, P4).
  static constexpr bool kNativeSend = requires { typename Socket::protocol_type; };

  // One gathered write of the queue's front; the count sent, 0 with `ec` on failure.
  std::size_t send_gathered(std::size_t& offered, std::error_code& ec) {
    ++write_calls;
    if constexpr (kNativeSend) {
      ::iovec iov[kMaxGather];  // uninitialized: gather() fills what it returns
      const std::size_t count = queue_.gather(iov, kMaxGather);
      offered = 0;
      for (std::size_t i = 0; i < count; ++i) offered += iov[i].iov_len;
      ::msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      alignas(::cmsghdr) char control[kLocal ? CMSG_SPACE(sizeof(int) * max_descriptors_per_message) : 1];
      bool attached = false;
      if constexpr (kLocal)
        if (!pending_fds_.empty()) attached = attach_fds(msg, control, offered);
      // Bytes followed by a small file region (an HTTP head before a body of at most
      // kCoalesceFile) go with MSG_MORE: the kernel holds them for the sendfile that
      // follows at once, so both leave in one segment. Before a larger region they go
      // alone, as nginx sends them: the peer starts reading while the file follows, and
      // on loopback holding them put the peer's receive work on this CPU (docs/web.md).
      const std::uint64_t file = queue_.file_after(count);
      const int flags = MSG_NOSIGNAL | (file > 0 && file <= kCoalesceFile ? MSG_MORE : 0);
      for (;;) {
        const ::ssize_t n = ::sendmsg(socket_.native_handle(), &msg, flags);
        if (n >= 0) {
          if constexpr (kLocal) {
            sent_bytes_ += static_cast<std::size_t>(n);
            if (attached && n > 0) {  // they left with the first byte
              close_all(pending_fds_.front().fds);
              pending_fds_.erase(pending_fds_.begin());
            }
          }
          return static_cast<std::size_t>(n);
        }
        if (errno == EINTR) continue;
        ec = std::error_code(errno, asio::error::get_system_category());
        return 0;
      }
    } else {
      std::array<asio::const_buffer, kMaxGather> bufs;
      const std::size_t count = queue_.gather(bufs.data(), bufs.size());
      offered = 0;
      for (std::size_t i = 0; i < count; ++i) offered += bufs[i].size();
      return socket_.write_some(std::span<const asio::const_buffer>(bufs.data(), count), ec);
    }
  }

  // The file region at the queue's front, with sendfile(2) (a pipe's, with splice(2)):
  // the count sent, 0 with `ec` on failure (EIO when the file ended before the region).
  std::size_t send_file(const WriteQueue::FileFront& file, std::size_t& offered,
                        std::error_code& ec) {
    ++write_calls;
    offered = static_cast<std::size_t>(std::min<std::uint64_t>(file.left, kMaxSendfile));
    auto offset = static_cast<::off_t>(file.offset);
    const int out = socket_.native_handle();
    for (;;) {
      const ::ssize_t n = without_sigpipe(offered, [&] {
        return file.pipe ? ::splice(file.fd, nullptr, out, nullptr, offered,
                                    SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                         : ::sendfile(out, file.fd, &offset, offered);
      });
      if (n > 0) {
        if constexpr (kLocal) sent_bytes_ += static_cast<std::size_t>(n);
        return static_cast<std::size_t>(n);
      }
      if (n == 0) {
        ec = std::make_error_code(std::errc::io_error);
        return 0;
      }
      if (errno == EINTR) continue;
      ec = std::error_code(errno, asio::error::get_system_category());
      return 0;
    }
  }

  // Shapes the gathered send `msg` around the next pending descriptors: a send that starts
  // before their offset stops there; the one that starts at it carries them (in `control`)
  // and stops at the offset of the descriptors after them. Adjusts `offered`; returns true
  // when the descriptors are attached.
  bool attach_fds(::msghdr& msg, char* control, std::size_t& offered) {
    const PendingFds& next = pending_fds_.front();
    const bool attach = next.offset == sent_bytes_;
    std::size_t cap = SIZE_MAX;
    if (!attach)
      cap = static_cast<std::size_t>(next.offset - sent_bytes_);
    else if (pending_fds_.size() > 1)
      cap = static_cast<std::size_t>(pending_fds_[1].offset - sent_bytes_);
    if (offered > cap) {
      std::size_t kept = 0, count = 0;
      while (kept < cap) {
        ::iovec& v = msg.msg_iov[count++];
        if (v.iov_len > cap - kept) v.iov_len = cap - kept;
        kept += v.iov_len;
      }
      msg.msg_iovlen = count;
      offered = cap;
    }
    if (!attach) return false;
    const std::size_t bytes = sizeof(int) * next.fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(bytes);
    ::cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(bytes);
    std::memcpy(CMSG_DATA(c), next.fds.data(), bytes);
    return true;
  }

  static void close_all(std::vector<int>& fds) noexcept {
    for (int fd : fds) ::close(fd);
    fds.clear();
  }

  void drop_pending_fds() noexcept {
    for (auto& p : pending_fds_) close_all(p.fds);
    pending_fds_.clear();
  }

  // Writes the queue with gathered writes (and file regions with sendfile) until it is
  // empty or the kernel is full. Returns false if the connection failed.
  bool flush() {
    while (!queue_.empty()) {
      std::size_t offered = 0;
      std::error_code ec;
      const WriteQueue::FileFront file = queue_.front_file();
      const std::size_t n =
          file.fd >= 0 ? send_file(file, offered, ec) : send_gathered(offered, ec);
      if (ec) {
        if (ec == asio::error::would_block || ec == asio::error::try_again) break;
        std::string detail;
        if (file.fd >= 0)
          detail = ec == std::make_error_code(std::errc::io_error)
                       ? "the file ended before the region given to write_file"
                       : file.pipe ? "splice" : "sendfile";
        close_hard(Reason::from_os_error(ec, std::move(detail)));
        return false;
      }
      queue_.consume(n);
      if (n < offered) break;  // the kernel's buffer is full: wait for writable
    }
    return true;
  }

  // For a write that finds the queue empty: true to cork it (the caller queues it and
  // sets corked_), false to send it at once. Inside data_received deliver() uncorks when
  // it returns; in any other turn the turn's end does (TurnEndHook); outside any turn
  // nothing would, so the write is sent at once.
  bool cork_here() noexcept {
    if (delivering_) return true;
    if (current_turn() == 0) return false;
    at_turn_end();
    return true;
  }

  // Sends what was corked (see the top of the file), and finishes a
  // lose_connection or lose_write_connection that waited for it. Returns false if the
  // connection is closed now.
  bool uncork() {
    corked_ = false;
    if (closed()) return false;
    if (write_waiting_) return true;  // on_writable drains the queue
    if (!flush()) return false;
    if (!queue_.empty()) {
      wait_writable();
      flow_.check_low(*this);
      return true;
    }
    if (write_ == WriteState::closing) {
      close_clean();
      return false;
    }
    if (write_ == WriteState::shutting) {
      flow_.check_low(*this);  // held reads go on: only our side ends
      shut_write();
      return !closed();
    }
    flow_.check_low(*this);
    return !closed();
  }

  void wait_writable() {
    if (write_waiting_) return;
    write_waiting_ = true;
    ++waits_;
    socket_.async_wait(Socket::wait_write,
                       [self = this->shared_from_this()](const std::error_code& ec) {
                         self->wait_done();
                         self->on_writable(ec);
                       });
  }

  void on_writable(const std::error_code& ec) {
    const TurnScope turn;
    write_waiting_ = false;
    if (closed()) return;
    if (ec) {
      if (ec != asio::error::operation_aborted) close_hard(Reason::from_os_error(ec));
      return;
    }
    if (!flush()) return;
    if (!queue_.empty()) {
      wait_writable();
      flow_.check_low(*this);
      return;
    }
    if (write_ == WriteState::closing) {
      close_clean();
      return;
    }
    if (write_ == WriteState::shutting) {
      flow_.check_low(*this);  // held reads go on: only our side ends
      shut_write();
      return;
    }
    flow_.check_low(*this);
  }

  void shut_write() {
    if (write_ != WriteState::shutting) return;
    write_ = WriteState::shut;
    std::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    if (ec) {
      close_hard(Reason::from_os_error(ec));
      return;
    }
    if (read_ == ReadState::eof) close_clean();  // the peer had finished too: nothing left to do
  }

  // --- flow control --------------------------------------------------------------

  // The end of a write that appended to the queue: if the queue was empty, the write corks
  // (cork_here) or is sent at once; then flow control, as after every write.
  void after_append(bool was_empty) {
    if (was_empty) {
      if (cork_here()) {
        corked_ = true;
      } else {
        if (!flush()) return;
        if (!queue_.empty()) wait_writable();
      }
    }
    after_write();
  }

  // Every write path ends here, after the bytes were sent or queued (flow_control.hpp).
  void after_write() {
    if (open()) flow_.after_write(*this);
  }

  // The host of FlowControl (flow_control.hpp): what the rules measure and call.
  friend class FlowControl;
  std::size_t flow_buffered() const noexcept { return queue_.size(); }
  bool flow_delivering() const noexcept { return delivering_; }
  bool flow_may_resume() const noexcept { return write_ == WriteState::open; }
  template <class F>
  void flow_call(const char* what, F&& fn) {
    guarded(what, fn);
  }
  // Reading held back by a full write buffer goes on again.
  void flow_reads_released() {
    if (want_read()) post_read();
  }
  // A pull producer is due: it is asked from the loop, if it still is by then.
  void flow_pull_due() {
    if (pull_posted_ || flow_.pull_wanted()) return;
    pull_posted_ = true;
    asio::post(io_, [self = this->shared_from_this()] {
      self->pull_posted_ = false;
      const TurnScope turn;
      self->flow_.ask_pull(*self);
    });
  }

  // --- closing -------------------------------------------------------------------

  void close_clean() {
    read_ = ReadState::closed;
    write_ = WriteState::closed;
    std::error_code ec;
    socket_.shutdown(asio::socket_base::shutdown_send, ec);
    close_socket();
    post_finish(Reason());
  }

  void close_hard(Reason reason) {
    if (closed()) return;
    read_ = ReadState::closed;
    write_ = WriteState::closed;
    queue_.clear();
    std::error_code ec;
    if (reason.is(error::connection_aborted) || reason.is(error::callback_threw))
      socket_.set_option(asio::socket_base::linger(true, 0), ec);  // RST, not FIN
    close_socket();
    post_finish(std::move(reason));
  }

  // Closes the socket, or with a wait queued on io_uring cancels it and closes it when the
  // last wait's handler has run (detail/io_close.hpp says why).
  void close_socket() {
    close_after_waits_ = !close_or_cancel(socket_, waits_ > 0);
  }

  // Every wait handler calls this first.
  void wait_done() {
    --waits_;
    if (close_after_waits_ && waits_ == 0) close_after_waits_ = !close_or_cancel(socket_, false);
  }

  void post_finish(Reason reason) {
    asio::post(io_, [self = this->shared_from_this(), reason = std::move(reason)] {
      self->finish(reason);
    });
  }

  void finish(const Reason& reason) {
    if (finished_) return;
    finished_ = true;
    const TurnScope turn;
    if (Producer* p = flow_.take()) {
      logged("stop_producing", [&] { p->stop_producing(); });
    }
    if (log_enabled(LogLevel::debug))
      log(LogLevel::debug, log_context(), "connection ended: " + reason.message());
    if (protocol_) logged("connection_lost", [&] { protocol_->end_connection(reason); });
    if (on_lost_) logged("client_connection_lost", [&] { on_lost_(reason); });
    connections_.unlink(*this);
    drop_pending_fds();
    protocol_.reset();
    on_lost_ = nullptr;
    self_.reset();  // the last owner may now be a pending operation, or nobody
  }

  // Runs a callback made after the connection is gone: an exception can only be logged.
  template <class F>
  void logged(const char* what, F&& fn) noexcept {
    run_guarded(fn, [&](const char* text, const std::exception_ptr&) {
      log(LogLevel::error, log_context(), exception_in(what, text));
    });
  }

  const std::uint64_t id_ = next_connection_id();
  TrackedList& connections_;  // outlives the io_context, unlike the Reactor's handle to it
  // Posts go to the io_context's own executor, not the socket's type-erased one: that
  // takes the handler memory from the same per-thread cache as the read operations (a read
  // completion frees one just before its deliver() posts the re-arm), where the
  // any_io_executor path allocates with a separate two-slot cache, which 50 connections
  // overflow: one malloc per message (PROFILE.md, P6).
  asio::io_context& io_;
  Socket socket_;
  Address host_;
  Address peer_;
  std::unique_ptr<Protocol> protocol_;
  LostHook on_lost_;
  std::shared_ptr<StreamEngine> self_;  // set from start() until finish()

  WriteQueue queue_;
  // Descriptors to send with the byte at `offset` of the outgoing stream (Unix only).
  struct PendingFds {
    std::uint64_t offset;
    std::vector<int> fds;
  };
  std::vector<PendingFds> pending_fds_;
  std::uint64_t sent_bytes_ = 0;  // bytes the kernel took so far (counted for Unix only)
  FlowControl flow_;  // the producer, the marks, reading held by them
  PipeSink* pipe_sink_ = nullptr;  // reads go into its pipe (PipeReader)

  ReadState read_ = ReadState::open;
  WriteState write_ = WriteState::open;
  bool read_armed_ = false;     // a read is posted or a readable wait armed
  int waits_ = 0;               // async_waits queued on socket_
  bool close_after_waits_ = false;  // close_socket() cancelled them: close when they end
  bool delivering_ = false;     // data_received (or descriptors_received) is running
  bool write_waiting_ = false;  // a writable wait is armed
  bool pull_posted_ = false;    // a pull producer's turn is posted
  bool corked_ = false;  // writes wait in the queue for uncork()
  bool finished_ = false;
  bool inq_ = false;  // TCP_INQ is on: reads say whether the kernel holds more
  // Reads tried after a drained read (try_read, learn_late): the posted read is one,
  // consecutive ones that found nothing, drained reads left to wait for before the next.
  static constexpr std::uint8_t kMaxLateMisses = 6;
  bool late_try_ = false;
  std::uint8_t late_misses_ = 0;
  std::uint8_t late_waits_ = 0;
};

}  // namespace torsion::detail
