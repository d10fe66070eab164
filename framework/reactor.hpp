#pragma once
/// \file
/// The Reactor: the event loop every connection, timer and callback runs on.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>

#include "framework/delayed_call.hpp"

namespace asio {
class io_context;
}

namespace torsion {

namespace detail {
class TrackedList;
}
class ListeningPort;
template <class T>
class Deferred;  // framework/deferred.hpp, needed only by triggers that return one

/// When a call_soon callback runs relative to other work.
///  - high: before normal callbacks queued for the same turn;
///  - normal: in FIFO order, interleaved with I/O (callbacks queued while the queue runs
///    wait for the next turn, so I/O is never starved);
///  - idle: only when no I/O is ready, no timer is due and no other callback is queued;
///    one idle callback per loop iteration, in FIFO order (GLib's idle sources).
enum class Priority { high, normal, idle };

/// The phases of the reactor's shutdown, for add_shutdown_trigger (Twisted's system event
/// triggers for "shutdown").
///  - before: first, while everything still works (say goodbye to peers, flush state);
///  - during: with the framework's own work: listening ports are closed first, then
///    every connection is asked to close (lose_connection);
///  - after: once every connection is gone, just before run() returns.
enum class ShutdownPhase { before, during, after };

/// The event loop: owns the Asio io_context, the timers and every live connection.
/// One reactor runs on one thread; every member except call_from_thread must be called
/// on that thread. Not copyable or movable.
class Reactor final : public Scheduler {
 public:
  /// A reactor with nothing scheduled; nothing runs until run() (or run_until()).
  Reactor();
  /// Closes every live connection and listening port without calling back (no
  /// connection_lost), and drops pending calls. Stop the loop and close connections
  /// first if their protocols must hear about it.
  ~Reactor() override;
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  /// Runs the loop until stop() or the end of a shutdown(); SIGINT and SIGTERM start a
  /// shutdown while it runs (see set_handle_signals). Exceptions escaping raw Asio
  /// handlers are logged and the loop goes on. Throws std::logic_error if the reactor is
  /// already running.
  void run();
  /// Makes run() (or run_until) return after the current callback. Safe from any
  /// callback; a stop before run() is forgotten when run() starts.
  void stop();
  /// True while run() or run_until() is on the stack.
  bool running() const noexcept;

  /// Runs the loop until `done()` returns true (checked before blocking and after every
  /// callback) or `timeout` seconds pass, or stop() is called. Returns the last value of
  /// `done()`. The timeout holds even while callbacks are always ready (a call_soon that
  /// queues itself again). If `done()` throws, the exception propagates and the reactor is
  /// left stopped, ready to run again. Meant for tests and for driving the loop from other
  /// code.
  bool run_until(const std::function<bool()>& done, double timeout);

  /// Monotonic seconds (std::chrono::steady_clock).
  double seconds() const override;

  /// Queues `fn` to run soon from the loop at the given priority (never from inside this
  /// call). Exceptions thrown by `fn` are logged. Reactor thread only: a debug build
  /// throws std::logic_error when it is called from another thread while the reactor
  /// runs (use call_from_thread).
  void call_soon(std::function<void()> fn, Priority priority = Priority::normal);
  /// call_soon with any callable, bound to the protocol it captures and owning a
  /// coroutine function's captures as Scheduler::call_later does.
  template <class F>
  requires(std::is_invocable_v<F&> &&
           !std::is_same_v<std::decay_t<F>,
                           std::function<void()>>) void call_soon(F fn, Priority priority =
                                                                            Priority::normal) {
    call_soon(detail::scheduled(std::move(fn)), priority);
  }
  /// call_soon at Priority::idle.
  template <class F>
  void call_idle(F fn) {
    call_soon(std::move(fn), Priority::idle);
  }
  /// Queues `fn` to run on the reactor's thread. The only member safe from other threads.
  void call_from_thread(std::function<void()> fn);

  /// The underlying io_context, for code that mixes in raw Asio.
  asio::io_context& context() noexcept;

  /// How many connections (transports) are live: made and not yet fully closed.
  std::size_t connection_count() const noexcept;

  /// For transports: the list of live connections.
  detail::TrackedList& connections() noexcept;

  // --- Graceful shutdown and signals -------------------------------------------------

  /// Shuts down gracefully, then makes run() return: runs the `before` triggers and waits
  /// for the Deferreds they return; stops every listening port; runs the `during`
  /// triggers and calls lose_connection on every connection; waits until the connections
  /// are gone and the `during` Deferreds have fired, at most shutdown_grace() seconds,
  /// then aborts the connections left; runs the `after` triggers; stops the loop.
  /// Works from the loop (call it before run() and it proceeds once run() starts).
  /// Idempotent while a shutdown is in progress. Exceptions from triggers are logged.
  void shutdown();
  /// True from shutdown() until run() returns.
  bool shutting_down() const noexcept;

  /// Registers `fn` to run in `phase` of every later shutdown. `fn()` may return void or
  /// a Deferred<void> (`before` and `during` phases wait for it). Returns an id for
  /// remove_shutdown_trigger.
  template <class F>
  std::uint64_t add_shutdown_trigger(ShutdownPhase phase, F fn) {
    using R = std::invoke_result_t<F&>;
    static_assert(std::is_void_v<R> || std::is_same_v<R, Deferred<void>>,
                  "a shutdown trigger returns void or Deferred<void>");
    if constexpr (std::is_void_v<R>)
      return add_trigger(phase, std::function<void()>(std::move(fn)), {});
    else
      return add_trigger(phase, {}, std::function<Deferred<void>()>(std::move(fn)));
  }
  /// Forgets a trigger; false if the id is unknown.
  bool remove_shutdown_trigger(std::uint64_t id);

  /// Seconds that connections get to close cleanly on shutdown before they are aborted
  /// (default 5). Throws std::invalid_argument for a negative or NaN value.
  void set_shutdown_grace(double seconds);
  /// The grace period set by set_shutdown_grace, in seconds.
  double shutdown_grace() const noexcept;

  /// Whether run() handles SIGINT and SIGTERM by calling shutdown() (default true). The
  /// handlers are installed only while run() runs (the default disposition comes back
  /// when it returns). A second signal during a shutdown aborts every connection and
  /// stops at once. Set it before run().
  void set_handle_signals(bool handle) noexcept;
  /// Whether run() handles SIGINT and SIGTERM (see set_handle_signals).
  bool handle_signals() const noexcept;
  /// The last signal run() handled (0 if none).
  int last_signal() const noexcept;

  /// For transports: a listening port that shutdown() must close first. Held weakly.
  void track_listening_port(const std::shared_ptr<ListeningPort>& port);

 protected:
  void check_thread(const char* what) const override;

 private:
  std::uint64_t add_trigger(ShutdownPhase phase, std::function<void()> plain,
                            std::function<Deferred<void>()> deferred);
  void shutdown_during();
  void shutdown_wait(double deadline);
  void shutdown_after();
  void wait_for_signal();

  struct Impl;
  struct LoopScope;
  std::unique_ptr<Impl> impl_;
};

}  // namespace torsion
