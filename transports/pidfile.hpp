#pragma once
/// \file
/// A pidfile, as twistd's --pidfile: the running server's process id in a file, for
/// scripts and supervisors that find a server by it.

#include <string>
#include <sys/types.h>

namespace torsion {

/// Writes this process's id (decimal, then a newline) to `path` when made, and removes
/// the file when destroyed if it still holds this process's id (a later server's file is
/// left alone). A file that already names a running process (kill(pid, 0) succeeds or
/// says EPERM) is refused: std::system_error with EEXIST, the message naming the pid; a
/// stale one (its process is gone, or it holds no pid) is replaced. The file is written
/// under a temporary name and renamed, so a reader never sees it half written. Throws
/// std::system_error when the file cannot be written. Not copyable; movable.
class PidFile {
 public:
  explicit PidFile(std::string path);
  ~PidFile();
  PidFile(PidFile&& other) noexcept;
  PidFile& operator=(PidFile&& other) noexcept;
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

  /// The file's path ("" once moved from).
  const std::string& path() const noexcept { return path_; }

  /// The process id `path` names, or 0 when it cannot be read or holds no pid.
  static pid_t read(const std::string& path);

 private:
  std::string path_;
  pid_t pid_ = 0;
};

}  // namespace torsion
