#pragma once
/// \file
/// FileWriter: the optional side of a transport that can send a part of a file without
/// copying it through the process (sendfile(2)). FileSender uses it when the transport it
/// writes to offers it (TCP and Unix sockets); others (TLS, wrappers, in-memory
/// transports) do not, and get the bytes written instead. PipeReader is its reading
/// counterpart: reads that move the peer's bytes into a pipe (splice(2)), which a
/// FileWriter then sends from the pipe; the relay (protocols/relay.hpp) pairs the two.

#include <cstddef>
#include <cstdint>
#include <memory>

namespace torsion {

/// A part of an open regular file, for FileWriter::write_file.
struct FileRegion {
  int fd = -1;               ///< the file; read at `offset` without moving its file offset
  std::uint64_t offset = 0;  ///< first byte to send
  std::uint64_t length = 0;  ///< how many bytes to send
  /// Kept by the transport until the region is sent or dropped, so that `fd` stays open
  /// that long (for example the object that owns the descriptor).
  std::shared_ptr<const void> keep;
  /// True when `fd` is the read end of a pipe whose first `length` bytes are the region
  /// (`offset` is then ignored): they are moved to the socket with splice(2). Regions of
  /// one pipe must be written in the order their bytes entered it, and nothing else may
  /// read the pipe meanwhile.
  bool pipe = false;
};

/// Implemented by transports that can send file regions; find it with
/// dynamic_cast<FileWriter*>(&transport) on the transport itself (not one beneath a
/// wrapper: the wrapper would be bypassed).
class FileWriter {
 public:
  virtual ~FileWriter() = default;
  /// Queues `region` after the bytes already written, for the kernel to send from the
  /// file. It counts in buffer_size() and flow control as a write of `region.length`
  /// bytes would, and follows the same rules: dropped after lose_connection,
  /// abort_connection or lose_write_connection; sent before a lose_connection completes.
  /// If the file is shorter than the region when its turn comes, the connection closes
  /// with error::connection_lost (cause EIO): the bytes promised cannot follow.
  /// Reactor thread only.
  virtual void write_file(FileRegion region) = 0;
};

/// Where a PipeReader moves what it reads: a pipe with room, and who hears of the bytes.
class PipeSink {
 public:
  virtual ~PipeSink() = default;
  /// Where the next read may go.
  struct Room {
    int fd = -1;            ///< the pipe's write end; -1 reads as usual this time
    std::size_t bytes = 0;  ///< at most this many bytes; 0 reads as usual this time
    bool empty = false;     ///< the pipe holds nothing (so a read that moved nothing
                            ///< found the socket empty, not the pipe full)
  };
  /// Asked before every read.
  virtual Room pipe_room() = 0;
  /// `n` (> 0) bytes from the peer were moved into the pipe: called from the loop, where
  /// data_received would have been, with the same rules (writes are corked, and so on).
  virtual void piped(std::size_t n) = 0;
};

/// Implemented by socket transports (TCP, Unix); find it with
/// dynamic_cast<PipeReader*>(&transport) on the transport itself, as FileWriter.
class PipeReader {
 public:
  virtual ~PipeReader() = default;
  /// From now on each read moves the peer's bytes into the pipe `sink` offers, with
  /// splice(2), and calls sink->piped instead of data_received; the EOF (eof_received),
  /// errors (connection_lost), pausing and resuming are as they were. A read for which
  /// the sink offers no room, or which finds the pipe full, reads as usual and calls
  /// data_received; a socket the kernel cannot splice (EINVAL, ENOSYS) forgets the sink
  /// and reads as usual from then on. Null reads as usual again. The sink must outlive
  /// the connection's reads (make it the protocol). Returns false, leaving reads as they
  /// are, on a transport that cannot. Reactor thread only.
  virtual bool read_into_pipe(PipeSink* sink) = 0;
};

}  // namespace torsion
