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

/// Write-buffer thresholds, in bytes of queued data: a registered streaming producer is
/// paused when the buffer rises above `high` and resumed when it falls to `low` or below.
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
  /// (those arrive as connection_lost). The bytes are copied (or sent at once).
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
  /// Sends end-of-file (TCP FIN) after the queue drains while reading goes on. The
  /// connection closes when the peer closes its side too.
  virtual void lose_write_connection() = 0;

  /// The remote address.
  virtual Address get_peer() const = 0;
  /// The local address.
  virtual Address get_host() const = 0;
  /// Bytes written but not yet handed to the kernel.
  virtual std::size_t buffer_size() const = 0;

  /// Registers a producer that feeds this transport. A streaming (push) producer is
  /// paused when buffer_size() rises above the high mark and resumed at the low mark; it
  /// starts unpaused unless the buffer is already above the high mark. A pull producer
  /// (streaming = false) gets resume_producing() now and each time the buffer empties.
  /// stop_producing() is called when the connection goes away. Throws std::logic_error if
  /// a producer is already registered.
  virtual void register_producer(Producer& producer, bool streaming) = 0;
  /// Forgets the producer without calling it.
  virtual void unregister_producer() = 0;

  /// Sets the write-buffer marks (high first). Throws std::invalid_argument if low > high.
  virtual void set_write_buffer_limits(std::size_t high, std::size_t low) = 0;
  /// The write-buffer marks in force.
  virtual WriteBufferLimits write_buffer_limits() const = 0;

  /// True from connection_made until lose_connection / abort_connection is called or the
  /// connection is lost.
  virtual bool connected() const = 0;

  /// The OS descriptor behind the transport, for socket options the API lacks; -1 when
  /// there is none (in-memory transports) or after close. Do not read, write or close it.
  virtual int native_handle() const { return -1; }

  // Producer, for incoming data: pause_producing() stops reading from the peer (data
  // already read is held back, nothing is lost or reordered), resume_producing() reads
  // again; both idempotent. stop_producing() is lose_connection().

 protected:
  virtual void write_bytes(std::string_view data) = 0;
  virtual void write_owned(std::string&& data) { write_bytes(data); }
  virtual void write_parts(std::span<const std::string_view> parts) {
    for (auto part : parts) write_bytes(part);
  }
};

}  // namespace torsion
