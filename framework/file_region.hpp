#pragma once
/// \file
/// FileWriter: the optional side of a transport that can send a part of a file without
/// copying it through the process (sendfile(2)). FileSender uses it when the transport it
/// writes to offers it (TCP and Unix sockets); others (TLS, wrappers, in-memory
/// transports) do not, and get the bytes written instead.

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

}  // namespace torsion
