#pragma once
/// \file
/// Producer and Transport: what a protocol writes to, whatever carries the bytes.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "framework/address.hpp"

namespace torsion {

/// Something that produces data and can be told to pause: a protocol or helper feeding a
/// transport (registered with Transport::register_producer), or a transport itself, which
/// produces the data it reads from the peer.
class Producer {
 public:
  virtual ~Producer() = default;
  /// Stop producing until resume_producing(). Idempotent.
  virtual void pause_producing() = 0;
  /// Produce again (for a pull producer: produce one more chunk). Idempotent.
  virtual void resume_producing() = 0;
  /// Stop for good: the consumer is going away.
  virtual void stop_producing() = 0;
};

/// Write-buffer thresholds, in bytes of queued data (Transport::buffer_size()): a
/// registered streaming producer is paused when the buffer rises above `high` (checked
/// after every write, whichever write call made it) and resumed when it drains to `low`
/// or below. Both are per transport; set them with set_write_buffer_limits(high, low) and
/// read them back in the same order from write_buffer_limits() (asyncio's getter returns
/// (low, high); this one does not swap them).
struct WriteBufferLimits {
  std::size_t high = 64 * 1024;  ///< default 64 KiB, as asyncio
  std::size_t low = 16 * 1024;   ///< default 16 KiB, as asyncio
};

/// The connection a protocol talks to. Transports call the protocol back only from the
/// reactor loop, never from inside one of these calls (except pause_producing and
/// resume_producing of a registered producer, which flow control calls from write).
/// All calls are for the reactor's thread only.
class Transport : public Producer {
 public:
  /// Queues bytes for the peer; returns at once and never throws for network errors
  /// (those arrive as connection_lost). The bytes are copied (or sent at once). TCP and
  /// Unix transports gather the writes made before the loop regains control, the first
  /// included, into one send when it does (docs/transports.md).
  /// After lose_connection, abort_connection or lose_write_connection, writes are dropped.
  void write(std::string_view data) { write_bytes(data); }
  /// Like write(string_view), but takes ownership of a large payload instead of copying.
  void write(std::string&& data) { write_owned(std::move(data)); }
  /// Writes a C string (without its terminator).
  void write(const char* data) { write_bytes(std::string_view(data)); }
  /// Writes several pieces as if concatenated, coalescing them into one send.
  void write_sequence(std::span<const std::string_view> parts) { write_parts(parts); }

  /// Closes after every byte already written has been handed to the kernel. Reading
  /// stops at once. connection_lost follows with a clean Reason (unless an error comes
  /// first). Idempotent.
  virtual void lose_connection() = 0;
  /// Drops anything queued and closes at once (TCP sends RST). connection_lost follows
  /// with error::connection_aborted. Idempotent; overrides a pending lose_connection.
  virtual void abort_connection() = 0;
  /// Sends end-of-file (TCP FIN) after the queue drains while reading goes on (half-close;
  /// Twisted's loseWriteConnection, asyncio's write_eof). Writes after it are dropped.
  /// The protocol still hears eof_received() when the peer closes its side; the
  /// connection then closes cleanly (connection_lost with a clean Reason).
  virtual void lose_write_connection() = 0;

  /// The remote address.
  virtual Address get_peer() const = 0;
  /// The local address.
  virtual Address get_host() const = 0;
  /// Bytes written but not yet handed to the kernel.
  virtual std::size_t buffer_size() const = 0;

  /// Registers a producer that feeds this transport (Twisted's registerProducer).
  ///
  /// Streaming (push) producer: assumed to be producing when registered, so it gets no
  /// call then, unless buffer_size() is already above the high mark, in which case
  /// pause_producing() is called from inside this call. Afterwards pause_producing() is
  /// called from inside the write (write, write_sequence, or the producer's own) that
  /// takes the buffer above the high mark, and resume_producing() from the loop when the
  /// buffer has drained to the low mark; the buffer therefore never exceeds the high mark
  /// by more than one write. Calls alternate: never two pauses or two resumes in a row.
  ///
  /// Pull producer (streaming = false): never paused. It gets resume_producing() from the
  /// loop (never from inside this call) once the buffer is empty, and again each time the
  /// buffer empties after it has written; it must write (at most a chunk) in each call.
  /// If it has nothing to write yet it may return without writing: it is not asked again
  /// until it writes something and that has been handed to the kernel (Twisted stalls the
  /// same way; asyncio has no producers).
  ///
  /// Either kind gets stop_producing() when the connection goes away (from the loop,
  /// before the protocol's connection_lost), or from inside this call if the transport is
  /// already closed. A producer is never resumed after lose_connection or
  /// lose_write_connection. An exception from pause_producing or resume_producing aborts
  /// the connection; one from stop_producing is logged.
  /// Throws std::logic_error if a producer is already registered.
  virtual void register_producer(Producer& producer, bool streaming) = 0;
  /// Forgets the producer without calling it. A paused producer stays paused.
  virtual void unregister_producer() = 0;

  /// Sets the write-buffer marks, high first, in bytes; a producer is paused or resumed at
  /// once if the buffer is already past the new marks. Throws std::invalid_argument if
  /// low > high.
  virtual void set_write_buffer_limits(std::size_t high, std::size_t low) = 0;
  /// The write-buffer marks in force.
  virtual WriteBufferLimits write_buffer_limits() const = 0;

  /// Back-pressure without a producer, on by default: when no producer is registered and
  /// a write made inside data_received (an answer to what was read) takes buffer_size()
  /// above the high mark, the transport stops reading from the peer (apart from
  /// pause_producing(), which stays the protocol's own) and reads again once the buffer
  /// has drained to the low mark. A protocol that answers what it reads thus cannot be
  /// made to queue without limit by a peer that sends and never reads; the kernel's
  /// buffers fill and TCP slows that peer. Writes made elsewhere (an upload from
  /// connection_made or a timer, a broadcast from another connection) do not stop
  /// reading, so two peers that each wait for the other to read cannot deadlock; bound
  /// those with a producer or buffer_size(). false gives Twisted's behaviour: reading goes
  /// on and every write queues without limit. Every transport torsion makes follows it:
  /// TCP, Unix, stdio, TLS (whose records are read by the stream transport beneath), the
  /// testing kit's in-memory ones, and ProtocolWrapper, which passes it on. The default
  /// here, for a transport that cannot hold reading back, ignores it and reports false.
  virtual void set_pause_reading_when_full(bool enabled) { (void)enabled; }
  /// Whether the rule above is in force on this transport.
  virtual bool pauses_reading_when_full() const { return false; }

  /// True from connection_made until lose_connection / abort_connection is called or the
  /// connection is lost.
  virtual bool connected() const = 0;

  /// The OS descriptor behind the transport, for socket options the API lacks; -1 when
  /// there is none (in-memory transports) or after close. Do not read, write or close it.
  virtual int native_handle() const { return -1; }

  /// The transport beneath this one when this one is a layer that forwards to another
  /// (a ProtocolWrapper); null for a transport that carries the bytes itself. Queries
  /// such as tls_info, start_tls, peer_credentials and proxy_header walk down through it
  /// (find_transport), so they work however many wrappers a factory stacks.
  virtual Transport* lower_transport() const { return nullptr; }

  // Producer, for incoming data: pause_producing() stops delivering data from the peer
  // (stream transports stop reading: bytes and an EOF wait in the kernel, nothing is lost
  // or reordered), resume_producing() delivers what waits, from the loop. Both are
  // idempotent and may be called from any protocol callback, including connection_made
  // (no data_received until resumed). While paused the kernel's receive buffer fills and
  // TCP flow control slows the peer. stop_producing() is lose_connection().

 protected:
  virtual void write_bytes(std::string_view data) = 0;
  virtual void write_owned(std::string&& data) { write_bytes(data); }
  virtual void write_parts(std::span<const std::string_view> parts) {
    for (auto part : parts) write_bytes(part);
  }
};

/// The first transport of type `T` met walking down from `transport` through
/// lower_transport() (`transport` itself included), or null if there is none.
template <class T>
[[nodiscard]] T* find_transport(Transport& transport) {
  for (Transport* t = &transport; t != nullptr; t = t->lower_transport())
    if (auto* found = dynamic_cast<T*>(t)) return found;
  return nullptr;
}
/// find_transport for a const transport.
template <class T>
[[nodiscard]] const T* find_transport(const Transport& transport) {
  for (const Transport* t = &transport; t != nullptr; t = t->lower_transport())
    if (auto* found = dynamic_cast<const T*>(t)) return found;
  return nullptr;
}

}  // namespace torsion
