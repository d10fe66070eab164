#pragma once
/// \file
/// Stream: a connection seen as awaitable reads and writes, over any Transport.
///
/// StreamProtocol is an ordinary Protocol that buffers what the peer sends; the Stream it
/// hands out offers read_some / read_exactly / read_line / read_to_end / write + drain,
/// each returning
/// a Deferred, so the same stream serves Deferred chains and coroutines alike:
///
///     Task<void> greet(Stream s) {
///       s.write("hello\n");
///       co_await s.drain();
///       auto line = co_await s.read_line(1024);   // std::nullopt at end of stream
///     }
///
/// Rules:
///  - One read at a time: a read started while another is pending throws
///    std::logic_error.
///  - Cancelling a pending read (its Deferred, the Task awaiting it, a TaskGroup or a
///    time-out: framework/task_group.hpp) consumes nothing: the bytes it had seen stay
///    buffered for the next read, and the stream stays usable.
///  - Reads complete from the scheduler's loop (a zero-delay call), never from inside a
///    transport call such as data_received, so code after co_await never runs re-entrantly
///    inside the transport.
///  - Memory is bounded: reading from the transport pauses while the buffer holds
///    StreamOptions::read_limit bytes (or what the pending read needs, if more).
///  - End of stream: read_some gives "" and read_line std::nullopt after a clean close or
///    the peer's EOF; after an unclean loss (reset, abort...) they fail with
///    ConnectionError instead, once the buffered bytes are read. read_exactly fails with
///    IncompleteReadError when the stream ends first. read_to_end gives every byte up to
///    the end, at most its limit (ReadLimitError beyond it, nothing consumed).
///  - The peer's EOF does not close our side (half-close): writes still go out until
///    close() or until the Stream is destroyed.
///  - Destroying the (move-only) Stream closes the connection with lose_connection.
/// Reactor (scheduler) thread only.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/reason.hpp"

namespace torsion {

/// A connection failed or was lost in a non-clean way; reason() tells how.
class ConnectionError : public std::runtime_error {
 public:
  /// what() is reason.message().
  explicit ConnectionError(Reason reason)
      : std::runtime_error(reason.message()), reason_(std::move(reason)) {}
  /// Why.
  const Reason& reason() const noexcept { return reason_; }

 private:
  Reason reason_;
};

/// read_exactly(n) met the end of the stream before n bytes.
class IncompleteReadError : public std::runtime_error {
 public:
  /// `partial`: the bytes that arrived; what() says how many of `expected`.
  IncompleteReadError(std::string partial, std::size_t expected)
      : std::runtime_error("stream ended after " + std::to_string(partial.size()) + " of " +
                           std::to_string(expected) + " bytes"),
        partial_(std::move(partial)),
        expected_(expected) {}
  /// The bytes that did arrive (consumed from the stream).
  const std::string& partial() const noexcept { return partial_; }
  /// How many were asked for.
  std::size_t expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::size_t expected_;
};

/// read_line(max) found no end of line within max bytes. The bytes stay buffered: read
/// them with read_some / read_exactly to skip the line, or close the stream.
class LineTooLongError : public std::runtime_error {
 public:
  /// what() names `limit`.
  explicit LineTooLongError(std::size_t limit)
      : std::runtime_error("line longer than " + std::to_string(limit) + " bytes"),
        limit_(limit) {}
  /// The limit that was exceeded.
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
};

/// read_to_end(max) found more than max bytes before the end of the stream. The bytes
/// stay buffered: read them in pieces with read_some, or close the stream.
class ReadLimitError : public std::runtime_error {
 public:
  /// what() names `limit`.
  explicit ReadLimitError(std::size_t limit)
      : std::runtime_error("stream holds more than " + std::to_string(limit) +
                           " bytes before its end"),
        limit_(limit) {}
  /// The limit that was exceeded.
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
};

/// Tuning for a Stream.
struct StreamOptions {
  /// Stop reading from the transport while this many bytes are buffered (64 KiB).
  std::size_t read_limit = 64 * 1024;
};

namespace detail {
class StreamCore;
}

/// The awaitable face of one connection; see the file comment. Move-only; a
/// default-constructed Stream is empty and every operation on it throws std::logic_error.
class Stream {
 public:
  Stream() = default;
  Stream(Stream&&) noexcept = default;
  /// Closes this stream's connection (as the destructor) and takes over `other`'s.
  Stream& operator=(Stream&& other) noexcept;
  /// Closes the connection (lose_connection) if it is still open.
  ~Stream();

  /// Up to `max` (>= 1) bytes as soon as any are buffered; "" at a clean end of stream.
  Deferred<std::string> read_some(std::size_t max = 64 * 1024);
  /// Exactly `n` bytes (n may be 0); IncompleteReadError if the stream ends first.
  Deferred<std::string> read_exactly(std::size_t n);
  /// The next line without its "\n" (and without a "\r" before it); at most `max` bytes
  /// of line content, else LineTooLongError. At the end of the stream an unterminated
  /// last line is returned as a line, then std::nullopt.
  Deferred<std::optional<std::string>> read_line(std::size_t max = 4096);
  /// Every byte up to the peer's end of stream (asyncio's StreamReader.read()), at most
  /// `max` (n may be 0): ReadLimitError as soon as more are buffered, consuming nothing,
  /// so a peer cannot grow memory without bound. "" if the stream has already ended.
  /// After an unclean loss it fails with ConnectionError (the bytes stay buffered).
  Deferred<std::string> read_to_end(std::size_t max);
  /// As above, at most StreamOptions::read_limit bytes (64 KiB by default).
  Deferred<std::string> read_to_end();

  /// Queues bytes for the peer (Transport::write semantics: never blocks; dropped after
  /// close or loss).
  void write(std::string_view data);
  /// As above, moving `data` in (no copy for large payloads).
  void write(std::string&& data);
  /// As above, for a NUL-terminated string.
  void write(const char* data) { write(std::string_view(data)); }
  /// Fires when the transport's write buffer is at or below its low water mark (at once
  /// if it is not above the high mark); fails with ConnectionError if the connection is
  /// lost first. Several drains may wait at once.
  Deferred<void> drain();

  /// Flushes then closes (lose_connection). Reads still see buffered bytes, then the end.
  void close();
  /// Closes at once, dropping unsent data (abort_connection).
  void abort();
  /// Sends EOF after the queued bytes (lose_write_connection); reading goes on.
  void close_write();

  /// True while the transport is connected and not closing.
  bool connected() const noexcept;
  /// True when the peer's data has ended and every byte of it was read.
  bool at_eof() const noexcept;
  /// Bytes received and not yet read.
  std::size_t buffered() const noexcept;
  /// Bytes written and not yet taken by the kernel (the transport's buffer_size()); 0 once
  /// the connection is gone, so a broadcast may ask it of any member without a check.
  std::size_t write_buffer_size() const;
  /// Why the connection ended, once it has.
  std::optional<Reason> lost_reason() const;
  /// The transport; throws std::logic_error once the connection is gone.
  Transport& transport() const;
  /// False for an empty (default-constructed or moved-from) Stream.
  explicit operator bool() const noexcept { return core_ != nullptr; }

  /// Internal: made by StreamProtocol; user code gets Streams from on_ready or connect_stream.
  explicit Stream(std::shared_ptr<detail::StreamCore> core) : core_(std::move(core)) {}

 private:
  detail::StreamCore& core() const;
  std::shared_ptr<detail::StreamCore> core_;
};

/// The Protocol behind a Stream. When the connection is made it calls `on_ready(stream)`
/// from the scheduler's loop (a zero-delay call, not inside connection_made). Use it with
/// any transport: a StreamFactory for servers, connect_stream for TCP clients.
class StreamProtocol : public Protocol {
 public:
  /// Receives the connection's Stream once the connection is made.
  using Ready = std::function<void(Stream)>;
  /// `on_ready` is called (from `scheduler`'s loop) with the Stream; `scheduler` must
  /// outlive the connection.
  StreamProtocol(Scheduler& scheduler, Ready on_ready, StreamOptions options = {});
  /// As above, for any callable; a coroutine function (one returning a Task) runs in a
  /// frame that owns its own copy, so its captures stay valid across every co_await.
  template <class F>
    requires(std::is_invocable_v<F&, Stream> && !std::is_same_v<std::decay_t<F>, Ready>)
  StreamProtocol(Scheduler& scheduler, F on_ready, StreamOptions options = {})
      : StreamProtocol(scheduler, Ready(detail::coroutine_owning(std::move(on_ready))), options) {}
  ~StreamProtocol() override;

  void connection_made() override;
  void data_received(std::string_view data) override;
  bool eof_received() override;
  void connection_lost(const Reason& reason) override;

 private:
  std::shared_ptr<detail::StreamCore> core_;
  Ready on_ready_;
};

class Reactor;
class Connector;

/// Connects through `connect` — any transport's connect call made with the ClientFactory
/// it is given (connect_tcp, connect_unix, an endpoint's connect) — and fires with the
/// connection's Stream from the reactor loop, or fails with ConnectionError. Cancelling
/// the Deferred disconnects the attempt; a connection that completes after the cancel is
/// closed at once. `connect` runs before this returns; its exceptions propagate.
[[nodiscard]] Deferred<Stream> connect_stream_with(
    Reactor& reactor, const std::function<std::shared_ptr<Connector>(ClientFactory&)>& connect,
    StreamOptions options = {});

/// A server Factory whose connections are Streams handed to `handler`, often a coroutine
/// lambda: `[greeting](Stream s) -> Task<void> {...}`. Each connection's coroutine runs
/// in a frame that owns its own copy of the lambda, so captures stay valid across every
/// co_await however long the connection lasts. The factory must outlive its connections
/// (as every Factory).
class StreamFactory : public Factory {
 public:
  /// Every connection's Stream goes to `handler`, from `scheduler`'s loop.
  StreamFactory(Scheduler& scheduler, StreamProtocol::Ready handler, StreamOptions options = {});
  /// As above, for any callable; a coroutine function owns its captures (see the class).
  template <class F>
    requires(std::is_invocable_v<F&, Stream> &&
             !std::is_same_v<std::decay_t<F>, StreamProtocol::Ready>)
  StreamFactory(Scheduler& scheduler, F handler, StreamOptions options = {})
      : StreamFactory(scheduler,
                      StreamProtocol::Ready(detail::coroutine_owning(std::move(handler))),
                      options) {}
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;

 private:
  Scheduler& scheduler_;
  StreamProtocol::Ready handler_;
  StreamOptions options_;
};

}  // namespace torsion
