#pragma once
/// \file
/// The Reactor: the event loop every connection, timer and callback runs on.

#include <cstddef>
#include <functional>
#include <memory>

#include "framework/delayed_call.hpp"

namespace asio {
class io_context;
}

namespace torsion {

namespace detail {
class TrackedList;
}

/// When a call_soon callback runs relative to other work.
///  - high: before normal callbacks queued for the same turn;
///  - normal: in FIFO order, interleaved with I/O (callbacks queued while the queue runs
///    wait for the next turn, so I/O is never starved);
///  - idle: only when no I/O is ready, no timer is due and no other callback is queued;
///    one idle callback per loop iteration, in FIFO order (GLib's idle sources).
enum class Priority { high, normal, idle };

/// The event loop: owns the Asio io_context, the timers and every live connection.
/// One reactor runs on one thread; every member except call_from_thread must be called
/// on that thread. Not copyable or movable.
class Reactor final : public Scheduler {
 public:
  Reactor();
  /// Closes every live connection and listening port without calling back (no
  /// connection_lost), and drops pending calls. Stop the loop and close connections
  /// first if their protocols must hear about it.
  ~Reactor() override;
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  /// Runs the loop until stop(). Exceptions escaping raw Asio handlers are logged and
  /// the loop goes on. Throws std::logic_error if the reactor is already running.
  void run();
  /// Makes run() (or run_until) return after the current callback. Safe from any
  /// callback; a stop before run() is forgotten when run() starts.
  void stop();
  /// True while run() or run_until() is on the stack.
  bool running() const noexcept;

  /// Runs the loop until `done()` returns true (checked before blocking and after every
  /// batch of callbacks) or `timeout` seconds pass, or stop() is called. Returns the last
  /// value of `done()`. Meant for tests and for driving the loop from other code.
  bool run_until(const std::function<bool()>& done, double timeout);

  /// Monotonic seconds (std::chrono::steady_clock).
  double seconds() const override;

  /// Queues `fn` to run soon from the loop at the given priority (never from inside this
  /// call). Exceptions thrown by `fn` are logged.
  void call_soon(std::function<void()> fn, Priority priority = Priority::normal);
  /// call_soon at Priority::idle.
  void call_idle(std::function<void()> fn) { call_soon(std::move(fn), Priority::idle); }
  /// Queues `fn` to run on the reactor's thread. The only member safe from other threads.
  void call_from_thread(std::function<void()> fn);

  /// The underlying io_context, for code that mixes in raw Asio.
  asio::io_context& context() noexcept;

  /// How many connections (transports) are live: made and not yet fully closed.
  std::size_t connection_count() const noexcept;

  /// For transports: the list of live connections.
  detail::TrackedList& connections() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace torsion
