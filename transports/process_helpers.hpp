#pragma once
/// \file
/// Running a program for its output: get_process_output and
/// get_process_output_and_value (Deferreds, as Twisted's utils.getProcessOutput*), and
/// run_process (a coroutine, as asyncio's create_subprocess_exec(...).communicate()).
/// All three are built on spawn_process (transports/process.hpp) and share its shutdown
/// policy: a reactor shutdown ends the child (SIGTERM, then SIGKILL at the grace period)
/// and the result still arrives, with the status that says so.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/task.hpp"
#include "transports/process.hpp"

namespace torsion {

/// What a finished child wrote and how it ended.
struct ProcessOutput {
  std::string out;    ///< everything it wrote to stdout
  std::string err;    ///< everything it wrote to stderr (empty with errortoo)
  ExitStatus status;  ///< how it ended
};

/// How to run a child for its output.
struct ProcessRunOptions {
  /// Environment, working directory and PATH lookup (spawn_process).
  ProcessOptions process;
  /// Written to the child's stdin, which is then closed (empty: closed at once).
  std::string input;
  /// Collect stderr into `out`, interleaved as it arrives (Twisted's errortoo), instead
  /// of into `err`.
  bool errortoo = false;
  /// The most bytes of stdout plus stderr kept (bounded by default). A child that writes
  /// more is killed (SIGKILL) and the Deferred fails with ProcessError.
  std::size_t max_output = 16 * 1024 * 1024;
};

/// The error of a child that did not give what was asked: get_process_output's child
/// wrote to stderr or was killed by a signal, or any helper's child wrote more than
/// max_output. `output` holds what it wrote (up to the limit) and its status.
class ProcessError : public std::runtime_error {
 public:
  /// `what` says why; `output` is what was collected.
  ProcessError(const std::string& what, ProcessOutput output)
      : std::runtime_error(what), output_(std::move(output)) {}
  /// What the child wrote and how it ended.
  const ProcessOutput& output() const noexcept { return output_; }

 private:
  ProcessOutput output_;
};

/// Runs argv and fires with everything it wrote to stdout once it has ended (every pipe
/// closed and the child reaped), whatever its exit code, as Twisted's getProcessOutput.
/// Fails with ProcessError if it wrote anything to stderr (unless options.errortoo, which
/// collects stderr into the result), was killed by a signal, or wrote more than
/// options.max_output. Throws (it does not return a failed Deferred) what spawn_process
/// throws for a program that cannot be started. cancel() kills the child (SIGKILL) and
/// fails the Deferred with CancelledError at once; the child is still reaped.
[[nodiscard]] Deferred<std::string> get_process_output(Reactor& reactor,
                                                       const std::vector<std::string>& argv,
                                                       ProcessRunOptions options = {});

/// Runs argv and fires with its stdout, stderr and status once it has ended, whatever
/// the status (a signal included), as Twisted's getProcessOutputAndValue. Fails with
/// ProcessError only for output beyond options.max_output. Start errors and cancel() as
/// get_process_output.
[[nodiscard]] Deferred<ProcessOutput> get_process_output_and_value(
    Reactor& reactor, const std::vector<std::string>& argv, ProcessRunOptions options = {});

/// The coroutine form of get_process_output_and_value: writes options.input to the
/// child, closes its stdin and returns what it wrote and how it ended (asyncio's
/// `await (await create_subprocess_exec(...)).communicate(input)`). A start error is
/// thrown from the co_await; cancelling the Task kills the child.
// Defined here, inline: compiled in process_helpers.cpp, this coroutine trips a clang 14
// back-end error under the fuzz build's -fsanitize=undefined,fuzzer-no-link ("Cannot
// represent a difference across sections"); inline, only its callers compile it.
[[nodiscard]] inline Task<ProcessOutput> run_process(Reactor& reactor,
                                                     std::vector<std::string> argv,
                                                     ProcessRunOptions options = {}) {
  co_return co_await get_process_output_and_value(reactor, argv, std::move(options));
}

}  // namespace torsion
