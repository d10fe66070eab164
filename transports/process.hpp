#pragma once
/// \file
/// Child processes: spawn_process runs a program with pipes to its stdin, stdout and
/// stderr, and reports its output and exit through a ProcessProtocol.

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/reactor.hpp"

namespace torsion {

/// How a child process ended: exactly one of "exited with exit_code" or "killed by
/// signal".
struct ExitStatus {
  /// The exit code (0..255) when the process exited, -1 when a signal killed it.
  int exit_code = -1;
  /// The signal that killed the process, 0 when it exited.
  int signal = 0;
  /// True when the kernel wrote a core dump as the signal killed it.
  bool core_dumped = false;

  /// True when the process exited (rather than being killed).
  bool exited() const noexcept { return signal == 0; }
  /// True when it exited with code 0.
  bool success() const noexcept { return signal == 0 && exit_code == 0; }
  /// "exit code 3" or "killed by signal 15 (Terminated)".
  std::string to_string() const;
  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

class ProcessTransport;

/// Hears about one child process. Subclass it and override what you need. The protocol
/// is the user's and must stay alive until process_ended returns. Every event comes from
/// the reactor loop, one at a time, never from inside a ProcessTransport call. An
/// exception thrown by an event is logged; the child is not touched.
class ProcessProtocol {
 public:
  virtual ~ProcessProtocol() = default;

  /// The child runs; transport() is valid from now until process_ended returns.
  virtual void connection_made() {}
  /// Bytes the child wrote to its stdout; the view is valid only during this call.
  virtual void out_received(std::string_view data) { (void)data; }
  /// Bytes the child wrote to its stderr; the view is valid only during this call.
  virtual void err_received(std::string_view data) { (void)data; }
  /// The child's stdout reached end-of-file (every writer closed it).
  virtual void out_closed() {}
  /// The child's stderr reached end-of-file.
  virtual void err_closed() {}
  /// The child exited or was killed, and has been reaped. Its output pipes may still be
  /// open (a grandchild may hold them).
  virtual void process_exited(const ExitStatus& status) { (void)status; }
  /// The child was reaped and both output pipes are closed: the last event, exactly once.
  virtual void process_ended(const ExitStatus& status) { (void)status; }

  /// The transport; throws std::logic_error when not attached.
  ProcessTransport& transport() const {
    if (!transport_) throw std::logic_error("ProcessProtocol::transport(): not attached");
    return *transport_;
  }
  /// True between connection_made and the end of process_ended.
  bool has_transport() const noexcept { return transport_ != nullptr; }

 private:
  friend class ProcessTransport;
  ProcessTransport* transport_ = nullptr;
};

/// The parent's side of a running child. Reactor thread only.
class ProcessTransport {
 public:
  virtual ~ProcessTransport() = default;
  /// The child's process id.
  virtual int pid() const = 0;
  /// Queues bytes for the child's stdin; never blocks. Dropped after close_stdin or once
  /// the child closed its stdin (a broken pipe never raises SIGPIPE in this process).
  virtual void write(std::string_view data) = 0;
  /// Closes the child's stdin after the queued bytes are written (the child sees EOF).
  /// Idempotent.
  virtual void close_stdin() = 0;
  /// Closes stdin now (dropping queued bytes) and stops reading stdout and stderr: the
  /// child gets EOF and, if it writes more, SIGPIPE. The events out_closed, err_closed
  /// and, once the child is reaped, process_exited and process_ended still follow.
  virtual void lose_connection() = 0;
  /// Sends signal `sig` to the child (through a pidfd, so never to a recycled pid).
  /// Returns false if the child has already been reaped. Throws std::invalid_argument
  /// for an invalid signal number.
  virtual bool signal_process(int sig) = 0;
  /// Bytes queued for stdin and not yet taken by the pipe.
  virtual std::size_t buffer_size() const = 0;
  /// The status once reaped, nullopt before.
  virtual std::optional<ExitStatus> exit_status() const = 0;

 protected:
  void attach(ProcessProtocol& protocol) { protocol.transport_ = this; }
  void detach(ProcessProtocol& protocol) { protocol.transport_ = nullptr; }
};

/// How to start a child.
struct ProcessOptions {
  /// The child's environment as "NAME=value" strings; nullopt inherits this process's.
  std::optional<std::vector<std::string>> env;
  /// The child's working directory; empty keeps this process's.
  std::string cwd;
  /// Look argv[0] up in PATH when it has no '/'.
  bool search_path = true;
};

/// Starts argv[0] with arguments argv (argv[0] included) and pipes for its stdin, stdout
/// and stderr; connection_made follows from the loop. The child gets no other descriptor
/// of this process (everything above 2 is closed in it) and default signal handling with
/// an empty signal mask. It is reaped as soon as it exits (through a pidfd, so many
/// children at once and children spawned by other code do not interfere); it counts as
/// a live connection of the reactor until process_ended. A child still running when the
/// reactor is destroyed is left running and is not reaped by torsion.
/// Throws std::invalid_argument for an empty argv or an argument containing a NUL byte,
/// std::system_error if the program cannot be started (ENOENT for a missing program,
/// EACCES, a bad cwd...). No event fires if it throws.
std::shared_ptr<ProcessTransport> spawn_process(Reactor& reactor, ProcessProtocol& protocol,
                                                const std::vector<std::string>& argv,
                                                const ProcessOptions& options = {});

}  // namespace torsion
