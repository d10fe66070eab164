#pragma once
/// \file
/// Loopback: a client protocol and a server protocol connected in memory, with a pump
/// that moves their bytes both ways (Twisted's iosim.connect), so that framing, flow
/// control and close handling can be tested deterministically, at every chunk size.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/address.hpp"
#include "framework/protocol.hpp"
#include "framework/reason.hpp"
#include "framework/detail/flow_control.hpp"
#include "framework/transport.hpp"

namespace torsion::testing {

namespace detail {

// Private: a FIFO of bytes with cheap removal from the front (one-byte chunks from a
// large buffer must not cost a memmove each).
class ByteFifo {
 public:
  std::size_t size() const noexcept { return data_.size() - pos_; }
  bool empty() const noexcept { return size() == 0; }
  std::string_view view() const noexcept { return std::string_view(data_).substr(pos_); }
  void append(std::string_view bytes) { data_.append(bytes); }
  void consume(std::size_t n) noexcept {
    pos_ += n;
    if (pos_ == data_.size()) {
      clear();
    } else if (pos_ > 4096 && pos_ > data_.size() / 2) {
      data_.erase(0, pos_);
      pos_ = 0;
    }
  }
  void clear() noexcept {
    data_.clear();
    pos_ = 0;
  }

 private:
  std::string data_;
  std::size_t pos_ = 0;
};

}  // namespace detail

/// How a Loopback moves bytes.
struct LoopbackOptions {
  /// Largest number of bytes handed to one data_received call; 0 means no limit (each
  /// delivery hands over everything that has arrived).
  std::size_t chunk_size = 0;
  /// When set, each delivery hands over a random number of bytes between 1 and
  /// chunk_size (or 64 when chunk_size is 0), drawn from a generator seeded with this
  /// value: the same seed gives the same splits on every platform.
  std::optional<std::uint32_t> seed;
  /// Bytes that may be in flight in each direction, written by one side and not yet read
  /// by the other (the kernel's socket buffers). While the reader is paused, writes beyond
  /// this stay in the writer's buffer (buffer_size()), which is how back-pressure reaches
  /// the writer's producer. At least 1.
  std::size_t wire_capacity = 64 * 1024;
  /// pump() throws std::runtime_error if the connection is still busy after this many
  /// steps (protocols that answer each other forever).
  std::size_t max_steps = 10'000'000;
  /// The client's address (the server's get_peer()).
  Address client_address = Address::ip("127.0.0.1", 54321);
  /// The server's address (the client's get_peer()).
  Address server_address = Address::ip("127.0.0.1", 8000);

  /// Options that deliver one byte per data_received call.
  static LoopbackOptions one_byte() {
    LoopbackOptions o;
    o.chunk_size = 1;
    return o;
  }
  /// Options that deliver random chunks of 1..max bytes from `seed`.
  static LoopbackOptions random_chunks(std::uint32_t seed, std::size_t max = 64) {
    LoopbackOptions o;
    o.chunk_size = max;
    o.seed = seed;
    return o;
  }
};

class Loopback;

/// One end of a Loopback: the Transport its protocol talks to. It follows the rules of
/// the stream engine (transports/detail/stream_engine.hpp), applied in
/// Loopback::pump() instead of from the reactor loop, and keeps its producer and water
/// marks in the same FlowControl (framework/detail/flow_control.hpp), which decides for the
/// engine and StringTransport too:
///  - write() queues bytes (buffer_size()); the pump moves them to the peer. A streaming
///    producer is paused from inside write() when the buffer rises above the high mark and
///    resumed from the pump when it falls to the low mark; a pull producer gets
///    resume_producing() from the pump when the buffer is empty and it has written since
///    it was last asked. No producer is resumed after lose_connection or
///    lose_write_connection.
///  - lose_connection() stops reading at once, and closes once the buffer has moved;
///    abort_connection() drops the buffer and closes now; lose_write_connection() sends
///    end-of-file after the buffer. connection_lost always comes later, from the pump.
///  - pause_producing() stops delivery to this end (arriving bytes and EOF wait, in
///    order); resume_producing() lets the next pump step deliver them.
///  - With no producer registered, a write made inside data_received that takes the
///    buffer above the high mark stops delivery to this end until the buffer has moved
///    down to the low mark (set_pause_reading_when_full, on by default).
///  - An exception (derived from std::exception) thrown by the protocol or its producer is
///    logged and aborts this connection with error::callback_threw. Other exceptions (a
///    test framework's REQUIRE) propagate out of pump().
class LoopbackTransport final : public Transport {
 public:
  LoopbackTransport(const LoopbackTransport&) = delete;
  LoopbackTransport& operator=(const LoopbackTransport&) = delete;
  ~LoopbackTransport() override;

  // Transport
  void lose_connection() override;
  void abort_connection() override;
  void lose_write_connection() override;
  Address get_peer() const override { return peer_; }
  Address get_host() const override { return host_; }
  std::size_t buffer_size() const override { return out_.size(); }
  void register_producer(Producer& producer, bool streaming) override;
  void unregister_producer() override;
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits write_buffer_limits() const override { return flow_.limits(); }
  bool connected() const override { return state_ == State::open; }
  void pause_producing() override { read_paused_ = true; }
  void resume_producing() override { read_paused_ = false; }
  void stop_producing() override { lose_connection(); }
  void set_pause_reading_when_full(bool enabled) override;
  bool pauses_reading_when_full() const override { return flow_.hold_reads(); }

  /// Reading is paused (pause_producing()).
  bool reading_paused() const noexcept { return read_paused_; }
  /// Flow control has paused the registered streaming producer.
  bool producer_paused() const noexcept { return flow_.paused(); }
  /// The registered producer, or null.
  Producer* producer() const noexcept { return flow_.producer(); }
  /// The protocol has heard connection_lost.
  bool lost() const noexcept { return finished_; }
  /// The reason connection_lost was (or will be) given, once the end is closed.
  const std::optional<Reason>& reason() const noexcept { return reason_; }

 protected:
  void write_bytes(std::string_view data) override;

 private:
  friend class Loopback;
  enum class State : std::uint8_t { open, closing, closed };

  LoopbackTransport(Loopback& loop, Protocol& protocol, Address host, Address peer);

  template <class F>
  bool guarded(const char* what, F&& fn);
  void close_hard(Reason reason);

  // The host of the flow-control rules (framework/detail/flow_control.hpp): held reading
  // and a due pull producer are seen to by the pump's next step.
  friend class torsion::detail::FlowControl;
  std::size_t flow_buffered() const noexcept { return out_.size(); }
  bool flow_delivering() const noexcept { return delivering_; }
  bool flow_may_resume() const noexcept { return state_ == State::open && !write_shut_requested_; }
  template <class F>
  void flow_call(const char* what, F&& fn) {
    guarded(what, fn);
  }
  void flow_reads_released() noexcept {}
  void flow_pull_due() noexcept {}

  Loopback& loop_;
  Protocol& protocol_;
  Address host_;
  Address peer_;
  detail::ByteFifo out_;  // written, not yet moved to the wire
  torsion::detail::FlowControl flow_;  // the producer, the marks, reading held by them
  std::optional<Reason> reason_;
  State state_ = State::open;
  bool read_paused_ = false;
  bool write_shut_requested_ = false;
  bool made_ = false;
  bool delivering_ = false;  // inside data_received
  bool finished_ = false;
};

/// A client and a server protocol connected in memory (Twisted's iosim.connect).
///
/// Construction attaches both protocols: the server's connection_made runs first, then
/// the client's. After that nothing happens until the test calls pump() (or step()): each
/// step moves written bytes onto the wire and delivers at most one chunk to each side
/// that is reading, then the end-of-file, reset and connection_lost events that are due,
/// so callbacks never run inside a transport call. pump() repeats steps until nothing
/// moves.
///
/// Disconnects propagate as over TCP:
///  - lose_connection() on one side: its bytes arrive, then EOF; the peer's eof_received()
///    decides (false: it closes too once its own buffer has moved; true: it may go on
///    writing). Both hear connection_lost with a clean Reason. But bytes that reach the
///    closed side (written by the peer, or unread when it closed) make its "kernel"
///    answer with a reset, as TCP's RST: a peer kept open after the EOF (half-open) hears
///    connection_lost with error::connection_lost (EPIPE) at its next write (the write
///    that caused the reset succeeds); a peer that closed on the EOF ends cleanly.
///  - abort_connection() on one side: connection_lost(error::connection_aborted) there;
///    the peer loses what was in flight and, when it next reads or writes, hears
///    connection_lost with error::connection_lost (ECONNRESET; EPIPE if it had read an
///    EOF before).
///  - lose_write_connection(): EOF reaches the peer after the buffered bytes; reading goes
///    on, and when the peer closes its side too this side hears eof_received() (its answer
///    no longer matters) and both ends hear a clean connection_lost.
/// connection_lost comes exactly once on each side.
///
/// The Loopback must outlive its protocols' use of the transports. Destroying it while a
/// side is still connected drops that side without calling back (as ~Reactor does).
/// Not copyable or movable; not thread-safe.
class Loopback {
 public:
  /// Connects `client` and `server`, which the test owns and which must outlive the
  /// Loopback.
  Loopback(Protocol& client, Protocol& server, LoopbackOptions options = {});
  /// Connects protocols the Loopback owns (for instance from build_protocol). Throws
  /// std::invalid_argument if either is null.
  Loopback(std::unique_ptr<Protocol> client, std::unique_ptr<Protocol> server,
           LoopbackOptions options = {});
  Loopback(const Loopback&) = delete;
  Loopback& operator=(const Loopback&) = delete;
  ~Loopback();

  /// Runs steps until one moves nothing; returns whether anything moved at all. Throws
  /// std::runtime_error after options.max_steps busy steps.
  bool pump();
  /// One step (see the class comment); returns whether anything moved.
  bool step();

  /// The client's end.
  LoopbackTransport& client_transport() noexcept { return *client_end_; }
  /// The server's end.
  LoopbackTransport& server_transport() noexcept { return *server_end_; }
  /// The client protocol.
  Protocol& client() noexcept { return client_; }
  /// The server protocol.
  Protocol& server() noexcept { return server_; }

  /// Bytes in flight from the client to the server (written and moved, not yet read).
  std::size_t in_flight_to_server() const noexcept { return to_server_.bytes.size(); }
  /// Bytes in flight from the server to the client.
  std::size_t in_flight_to_client() const noexcept { return to_client_.bytes.size(); }
  /// Both sides have heard connection_lost.
  bool finished() const noexcept { return client_end_->lost() && server_end_->lost(); }
  /// Steps taken so far.
  std::size_t steps() const noexcept { return steps_; }

 private:
  friend class LoopbackTransport;

  // One direction of the connection, as the receiving kernel holds it.
  struct Wire {
    detail::ByteFifo bytes;
    bool eof = false;            // end-of-file follows the bytes
    bool eof_delivered = false;  // the reader has seen it
    bool reset = false;          // a reset follows (the sender closed with data unread)
  };

  bool flush(LoopbackTransport& from, LoopbackTransport& to, Wire& wire, Wire& back);
  bool deliver(LoopbackTransport& to, Wire& wire);
  bool pull(LoopbackTransport& end);
  bool finish(LoopbackTransport& end);
  std::size_t next_chunk(std::size_t available);
  Wire& wire_from(const LoopbackTransport& end) noexcept;
  Wire& wire_to(const LoopbackTransport& end) noexcept;

  std::unique_ptr<Protocol> owned_client_;
  std::unique_ptr<Protocol> owned_server_;
  Protocol& client_;
  Protocol& server_;
  LoopbackOptions options_;
  std::uint64_t rng_state_ = 0;
  std::string chunk_;  // the bytes of the data_received call in progress
  bool stepping_ = false;
  Wire to_server_;
  Wire to_client_;
  std::unique_ptr<LoopbackTransport> server_end_;
  std::unique_ptr<LoopbackTransport> client_end_;
  std::size_t steps_ = 0;
};

}  // namespace torsion::testing
