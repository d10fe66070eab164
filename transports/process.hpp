#pragma once
/// \file
/// Child processes: spawn_process runs a program with pipes to its stdin, stdout and
/// stderr, and reports its output and exit through a ProcessProtocol.

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/reactor.hpp"
#include "framework/transport.hpp"

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

/// Hears about one child process. Subclass it and override what you need. Every event
/// comes from the reactor loop, one at a time, never from inside a ProcessTransport call
/// (except pause_producing / resume_producing of a producer registered for stdin, which
/// flow control calls from write, as on any Transport). An exception thrown by an event
/// is logged and aborts the transport (abort_connection: every pipe closes now); the
/// child is not signalled, and its exit is still reported.
class ProcessProtocol {
 public:
  virtual ~ProcessProtocol() = default;

  /// The child runs; transport() is valid from now until process_ended returns.
  virtual void connection_made() {}
  /// Bytes the child wrote to its stdout; the view is valid only during this call.
  virtual void out_received(std::string_view data) { (void)data; }
  /// Bytes the child wrote to its stderr; the view is valid only during this call.
  virtual void err_received(std::string_view data) { (void)data; }
  /// The child's stdin is closed: close_stdin or lose_connection flushed it, or
  /// abort_connection dropped it, or the child closed its end (what it did not read is
  /// dropped). Writes after it are dropped.
  virtual void in_closed() {}
  /// The child's stdout reached end-of-file (every writer closed it), or this side
  /// stopped reading it (lose_connection, abort_connection).
  virtual void out_closed() {}
  /// The same for stderr.
  virtual void err_closed() {}
  /// The child exited or was killed, and has been reaped. Its output pipes may still be
  /// open (a grandchild may hold them).
  virtual void process_exited(const ExitStatus& status) { (void)status; }
  /// The child was reaped and its three pipes are closed: the last event, exactly once,
  /// also when the reactor shuts down while the child runs (see spawn_process).
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

/// The parent's side of a running child. Its stdin, stdout and stderr run on the same
/// stream engine as TCP (docs/transports.md), with the same rules: writes to stdin are
/// queued and batched per turn of the loop, a producer registered for stdin is paused
/// above the high water mark and resumed at the low one (so a child that stops reading
/// pauses what feeds it), and the transport is itself a Producer of the child's output
/// (pause_producing stops reading stdout and stderr, so a child that writes faster than
/// its consumer takes is slowed by its full pipe). Reactor thread only.
class ProcessTransport : public Producer {
 public:
  ~ProcessTransport() override = default;
  /// The child's process id.
  virtual int pid() const = 0;

  /// Queues bytes for the child's stdin and returns at once; as Transport::write. Dropped
  /// once stdin is closed (close_stdin, lose_connection, abort_connection, or the child
  /// closed it; a broken pipe never raises SIGPIPE in this process).
  void write(std::string_view data) { stdin_pipe().write(data); }
  /// Like write(string_view), taking a large payload without copying it.
  void write(std::string&& data) { stdin_pipe().write(std::move(data)); }
  /// Writes a C string (without its terminator).
  void write(const char* data) { stdin_pipe().write(data); }
  /// Writes several pieces as if concatenated.
  void write_sequence(std::span<const std::string_view> parts) {
    stdin_pipe().write_sequence(parts);
  }
  /// Half-close: closes the child's stdin after the queued bytes are written (the child
  /// reads EOF); its output is still read. Idempotent.
  virtual void close_stdin() = 0;
  /// Closes stdin after the queued bytes are written and stops reading stdout and stderr
  /// now (the child reads EOF and, if it writes more, gets SIGPIPE). in_closed,
  /// out_closed, err_closed and, once the child is reaped, process_exited and
  /// process_ended still follow. Idempotent.
  virtual void lose_connection() = 0;
  /// Like lose_connection, but drops what is queued for stdin. Idempotent.
  virtual void abort_connection() = 0;
  /// Sends signal `sig` to the child (through a pidfd, so never to a recycled pid).
  /// Returns false if the child has already been reaped. Throws std::invalid_argument
  /// for an invalid signal number.
  virtual bool signal_process(int sig) = 0;
  /// Bytes queued for stdin and not yet taken by the pipe.
  std::size_t buffer_size() const { return stdin_pipe().buffer_size(); }
  /// The status once reaped, nullopt before.
  virtual std::optional<ExitStatus> exit_status() const = 0;

  /// Registers a producer that feeds the child's stdin; the rules of
  /// Transport::register_producer apply (paused above the high mark, resumed at the low
  /// mark, stop_producing when stdin closes). Throws std::logic_error if one is
  /// registered already.
  void register_producer(Producer& producer, bool streaming) {
    stdin_pipe().register_producer(producer, streaming);
  }
  /// Forgets the stdin producer without calling it.
  void unregister_producer() { stdin_pipe().unregister_producer(); }
  /// Sets stdin's write-buffer marks (Transport::set_write_buffer_limits).
  void set_write_buffer_limits(std::size_t high, std::size_t low) {
    stdin_pipe().set_write_buffer_limits(high, low);
  }
  /// Stdin's write-buffer marks in force.
  WriteBufferLimits write_buffer_limits() const { return stdin_pipe().write_buffer_limits(); }

  // Producer, for the child's output: pause_producing() stops reading stdout and stderr
  // (the child blocks once the pipes are full), resume_producing() reads on;
  // stop_producing() is lose_connection().

 protected:
  /// The stream transport under the child's stdin.
  virtual Transport& stdin_pipe() const = 0;
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
/// a live connection of the reactor until process_ended. `protocol` must stay alive until
/// process_ended returns or the reactor is destroyed.
///
/// Shutdown: a graceful Reactor::shutdown() closes the child's stdin (after what is
/// queued), stops reading its output and sends it SIGTERM; a child still running when the
/// grace period ends gets SIGKILL. Either way it is reaped inside the shutdown and
/// process_ended is delivered before run() returns. A child still running when the
/// reactor is destroyed without a shutdown (run() ended by stop()) is killed with
/// SIGKILL and reaped by the destructor, with no event (no callback runs from a
/// destructor); nothing is left running or unreaped.
///
/// Throws std::invalid_argument for an empty argv or an argument containing a NUL byte,
/// std::system_error if the program cannot be started (ENOENT for a missing program,
/// EACCES, a bad cwd...). No event fires if it throws.
std::shared_ptr<ProcessTransport> spawn_process(Reactor& reactor, ProcessProtocol& protocol,
                                                const std::vector<std::string>& argv,
                                                const ProcessOptions& options = {});

/// The same, for a protocol the transport owns: it is destroyed after process_ended
/// returns (or with the reactor). Throws std::invalid_argument for a null protocol.
std::shared_ptr<ProcessTransport> spawn_process(Reactor& reactor,
                                                std::unique_ptr<ProcessProtocol> protocol,
                                                const std::vector<std::string>& argv,
                                                const ProcessOptions& options = {});

}  // namespace torsion
