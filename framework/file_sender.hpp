#pragma once
/// \file
/// FileSender: streams a file (or any ByteSource) into a transport as a pull producer,
/// one chunk each time the transport's write buffer empties (Twisted's FileSender).
/// It talks only to the Transport interface, so it works over any transport; a regular
/// file over a TCP or Unix socket goes with sendfile(2) (FileWriter, file_region.hpp),
/// never through this process's memory.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "framework/transport.hpp"

namespace torsion {

/// Where a FileSender reads its bytes from. Reads happen on the reactor's thread, so a
/// source must not block for long (regular files are fine, as in Twisted).
class ByteSource {
 public:
  virtual ~ByteSource();
  /// Copies up to out.size() bytes into `out` and returns how many; 0 means the end.
  /// On failure sets `ec` (the return value is then ignored).
  virtual std::size_t read(std::span<char> out, std::error_code& ec) = 0;
  /// For a source that reads a regular file from its current offset: the descriptor, so
  /// that a FileSender can have the transport send the file (sendfile(2)) instead of
  /// calling read(); -1 (the default) for any other source. The source keeps it open.
  virtual int file_descriptor() const noexcept { return -1; }
  /// The size of a regular file as it was when the source was opened (no further system
  /// call); std::nullopt (the default) when unknown.
  virtual std::optional<std::uint64_t> size_at_open() const noexcept { return std::nullopt; }
  /// The modification time (seconds since the epoch) of a regular file as it was when the
  /// source was opened (no further system call); std::nullopt (the default) when unknown.
  virtual std::optional<std::int64_t> modified_at_open() const noexcept { return std::nullopt; }
  /// For a source with a file_descriptor(): its current offset when the source knows it
  /// without a system call (open_file_source's does); std::nullopt (the default) makes a
  /// FileSender ask the descriptor (lseek).
  virtual std::optional<std::uint64_t> file_offset() const noexcept { return std::nullopt; }
};

/// A source reading the file at `path` from its start (a regular file offers its
/// descriptor for sendfile). Throws std::system_error naming the path if it cannot be
/// opened.
[[nodiscard]] std::unique_ptr<ByteSource> open_file_source(const std::string& path);

/// A source reading the regular file at `path` from its start, opened with one open(2)
/// and one fstat(2) and without blocking on a FIFO or a device (O_NONBLOCK, which
/// changes nothing for a regular file; nginx opens files so). On failure returns null
/// and sets `ec`: the open's error (no_such_file_or_directory, permission_denied...),
/// is_a_directory for a directory, or invalid_argument for anything else that is not a
/// regular file. Its size_at_open() is the file's size, its modified_at_open() its mtime.
std::unique_ptr<ByteSource> open_regular_file(const std::string& path, std::error_code& ec);

/// A source serving `data` (for tests and for payloads already in memory).
[[nodiscard]] std::unique_ptr<ByteSource> string_source(std::string data);

/// Sends a ByteSource into a Transport as a pull producer: it registers itself
/// (register_producer(*this, false)) and writes one chunk per resume_producing, which the
/// transport calls each time its write buffer empties, so at most one chunk waits in the
/// transport's queue and memory stays flat however large the file. A source with a file
/// descriptor (open_file_source on a regular file) on a transport that is a FileWriter
/// (TCP, Unix) is sent as file regions of chunk_size bytes that the kernel copies
/// (sendfile(2)): same pacing, no buffer; elsewhere (TLS, wrappers, in-memory transports)
/// it is read and written chunk by chunk. When the source ends
/// it unregisters and calls `done` with an empty error_code (every byte has been handed to
/// the transport; follow with lose_connection() to close after they are sent). If the
/// connection goes away first (stop_producing) or stop() is called, `done` gets
/// error::cancelled; if the source fails, `done` gets its error and the connection is left
/// open for the caller to decide (usually abort_connection()).
///
/// The sender must outlive the transfer (make it a member of the protocol that starts it);
/// destroying it while active unregisters it from the transport without calling `done`.
/// `done` runs from the loop and may destroy the sender. Reactor thread only.
class FileSender final : public Producer {
 public:
  /// Called once when the transfer ends: empty code on success.
  using Done = std::function<void(std::error_code)>;

  /// Throws std::invalid_argument if `chunk_size` is 0.
  explicit FileSender(std::size_t chunk_size = 64 * 1024);
  ~FileSender() override;
  FileSender(const FileSender&) = delete;
  FileSender& operator=(const FileSender&) = delete;

  /// Starts sending `source` into `transport`; the first chunk is written from the loop
  /// once the transport's buffer is empty (on the sendfile path with a `length`, the
  /// first region is queued at once, behind what was written before: it holds no
  /// memory). With a `length`, exactly that many bytes are
  /// sent: the transfer ends after them, and a source that ends sooner ends it with
  /// std::errc::io_error (a file that shrank; over sendfile the transport sees it and the
  /// connection closes with error::connection_lost, cause EIO, and `done` gets
  /// error::cancelled). If the transport is already closed, `done` gets
  /// error::cancelled from inside this call. Throws std::logic_error if a transfer is
  /// already active, std::invalid_argument for a null source; if the transport already
  /// has a producer, register_producer's std::logic_error propagates and nothing starts.
  void begin_transfer(Transport& transport, std::unique_ptr<ByteSource> source, Done done,
                      std::optional<std::uint64_t> length = std::nullopt);

  /// Ends an active transfer now (unregisters; `done` gets error::cancelled). Harmless
  /// no-op when nothing is active.
  void stop();

  /// Whether a file source may go through Transport::write_file (sendfile), on by
  /// default; false reads and writes every chunk, as over TLS (for comparison, or for
  /// files on a file system whose sendfile fails). Takes effect at the next transfer.
  void set_zero_copy(bool enabled) noexcept { zero_copy_ = enabled; }

  /// Bytes per file region on the sendfile path (default: chunk_size). A region holds no
  /// memory, so a larger one (the HTTP server uses 1 MiB) saves loop turns and system
  /// calls; buffer_size() counts it until the kernel has taken it. Throws
  /// std::invalid_argument for 0.
  void set_region_size(std::size_t bytes);

  /// True from begin_transfer until `done` is called.
  bool active() const noexcept { return transport_ != nullptr; }
  /// Bytes handed to the transport by the current (or last) transfer.
  std::uint64_t bytes_sent() const noexcept { return sent_; }

  /// Producer (called by the transport): a pull producer is never paused.
  void pause_producing() override {}
  /// Writes one chunk (or file region); at the end of the source, finishes the transfer.
  void resume_producing() override;
  /// The connection is going away: the transfer ends with error::cancelled.
  void stop_producing() override;

 private:
  void finish(std::error_code ec, bool unregister);
  bool send_region(std::uint64_t want);

  std::size_t chunk_size_;
  std::size_t region_size_;
  std::string buffer_;
  Transport* transport_ = nullptr;
  std::shared_ptr<ByteSource> source_;  // shared with the file regions still queued
  std::optional<std::uint64_t> length_;
  bool zero_copy_ = true;
  enum class Path : std::uint8_t { untried, file, buffered } path_ = Path::untried;
  std::uint64_t file_offset_ = 0;  // the file's next byte, on the sendfile path
  std::uint64_t file_end_ = 0;     // its size when last looked at
  Done done_;
  std::uint64_t sent_ = 0;
};

}  // namespace torsion
