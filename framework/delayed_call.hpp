#pragma once
/// \file
/// DelayedCall (the handle `call_later` returns) and Scheduler, the time interface shared
/// by the reactor and the testing toolkit's manual clock.

#include <chrono>
#include <functional>
#include <memory>  // kept: code including this header has long relied on it
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/detail/protocol_scope.hpp"
#include "framework/detail/timer_queue.hpp"

namespace torsion {

template <class T>
class Task;  // framework/task.hpp

namespace detail {

template <class R>
struct IsTask : std::false_type {};
template <class U>
struct IsTask<Task<U>> : std::true_type {};

template <class F>
auto coroutine_owning(F fn);  // framework/deferred/core.hpp

// What call_later and call_soon keep for `fn`: bound to the protocol in scope that it
// captures (protocol_scope.hpp) and, for a coroutine function, run in a coroutine frame
// that owns a copy of it, so its captures outlive the call (Task.hpp: dropping the Task
// does not stop the coroutine).
template <class F>
std::function<void()> scheduled(F fn) {
  if constexpr (IsTask<std::decay_t<std::invoke_result_t<F&>>>::value)
    return bind_to_owner(coroutine_owning(std::move(fn)));
  else
    return bind_to_owner(std::move(fn));
}

}  // namespace detail

/// A handle on a call scheduled with call_later. Copies refer to the same call. A default
/// constructed handle refers to nothing and is never active. Dropping the handle does not
/// cancel the call (fire and forget); hold a ScopedDelayedCall for a call that must be
/// cancelled when its owner goes away. Handles may outlive the call
/// and its scheduler; operations on a finished call are harmless no-ops that return false.
/// Not thread-safe: use it on the scheduler's thread.
class DelayedCall {
 public:
  DelayedCall() = default;
  DelayedCall(const DelayedCall& other) noexcept : node_(other.node_) { detail::retain(node_); }
  DelayedCall(DelayedCall&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  DelayedCall& operator=(const DelayedCall& other) noexcept {
    detail::retain(other.node_);  // first: self-assignment must not free the node
    detail::release(std::exchange(node_, other.node_));
    return *this;
  }
  DelayedCall& operator=(DelayedCall&& other) noexcept {
    if (this != &other) detail::release(std::exchange(node_, std::exchange(other.node_, nullptr)));
    return *this;
  }
  ~DelayedCall() { detail::release(node_); }

  /// Cancels the call if it is still pending: its callback is destroyed and never runs.
  /// Returns true if it was pending, false (and does nothing) if it already ran, was
  /// cancelled before, or the handle is empty.
  bool cancel();

  /// Moves the call to `seconds` from now. Returns false and does nothing if it is not
  /// pending. Throws std::invalid_argument for a negative or NaN delay.
  bool reset(double seconds);

  /// Pushes the call `seconds` later than its current time (negative brings it earlier).
  /// Returns false and does nothing if it is not pending. Throws for NaN.
  bool delay(double seconds);

  /// True while the call is pending (neither run nor cancelled).
  bool active() const noexcept;
  /// True once the callback has started running.
  bool called() const noexcept;
  /// True once the call was cancelled.
  bool cancelled() const noexcept;

  /// When the call is (or was) due, in seconds on its scheduler's clock; 0 for an
  /// empty handle.
  double time() const noexcept;

  /// Internal, for schedulers: adopts one reference to `node` (null makes an empty handle).
  /// User code gets DelayedCalls from call_later.
  static DelayedCall adopt(detail::TimerNode* node) noexcept { return DelayedCall(node); }

 private:
  explicit DelayedCall(detail::TimerNode* node) noexcept : node_(node) {}

  detail::TimerNode* node_ = nullptr;  // one reference, or null
};

/// A DelayedCall that is cancelled when this handle is destroyed (or assigned over): for
/// a timer that belongs to an object and must never fire after it, such as a time-out a
/// protocol keeps as a member. Move-only. `ScopedDelayedCall t = reactor.call_later(...);`
/// A plain DelayedCall, by contrast, leaves the call pending when the handle goes away.
class [[nodiscard]] ScopedDelayedCall {
 public:
  ScopedDelayedCall() = default;
  /// Takes over `call`: it is cancelled when this handle is destroyed.
  ScopedDelayedCall(DelayedCall call) noexcept : call_(std::move(call)) {}  // NOLINT: implicit on purpose
  ScopedDelayedCall(ScopedDelayedCall&&) noexcept = default;
  /// Cancels the call held now, then takes over `other`'s.
  ScopedDelayedCall& operator=(ScopedDelayedCall&& other) noexcept {
    if (this != &other) {
      call_.cancel();
      call_ = std::move(other.call_);
    }
    return *this;
  }
  ScopedDelayedCall(const ScopedDelayedCall&) = delete;
  ScopedDelayedCall& operator=(const ScopedDelayedCall&) = delete;
  /// Cancels the call if it is still pending.
  ~ScopedDelayedCall() { call_.cancel(); }

  /// DelayedCall::cancel.
  bool cancel() { return call_.cancel(); }
  /// DelayedCall::reset.
  bool reset(double seconds) { return call_.reset(seconds); }
  /// DelayedCall::delay.
  bool delay(double seconds) { return call_.delay(seconds); }
  /// DelayedCall::active.
  bool active() const noexcept { return call_.active(); }
  /// DelayedCall::called.
  bool called() const noexcept { return call_.called(); }
  /// DelayedCall::cancelled.
  bool cancelled() const noexcept { return call_.cancelled(); }
  /// DelayedCall::time.
  double time() const noexcept { return call_.time(); }
  /// Gives the call up without cancelling it: it stays pending, as a plain DelayedCall.
  DelayedCall release() noexcept { return std::move(call_); }

 private:
  DelayedCall call_;
};

/// Anything that tells the time and runs calls later: the Reactor, or the manual clock of
/// the testing toolkit. Code that only needs timers (time-outs, looping calls) should take
/// a Scheduler& so that its tests can use the manual clock.
class Scheduler {
 public:
  virtual ~Scheduler();

  /// Seconds on a monotonic clock (the reactor's) or on the manual clock.
  virtual double seconds() const = 0;

  /// Runs `fn` once, `delay` seconds from now, from the scheduler's loop (never from
  /// inside this call). Calls due at the same time run in the order they were scheduled.
  /// An exception thrown by `fn` is logged and does not stop the loop.
  /// Throws std::invalid_argument for a negative or NaN delay, naming the value. An
  /// infinite delay (or one past what the clock can count, about 290 years) never fires.
  /// On a Reactor, a debug build (NDEBUG not defined) throws std::logic_error when this is
  /// called from another thread while the reactor runs.
  /// A std::function is called as it is; see the next overload for other callables.
  DelayedCall call_later(double delay, std::function<void()> fn);

  /// call_later with any callable. One that captures a protocol (`[this]`) and is
  /// scheduled while that protocol is in scope (handling an event) is bound to it: it
  /// does not run once the protocol is destroyed (docs/protocols-and-factories.md,
  /// "Callbacks that outlive their protocol"). A coroutine function (a lambda returning a
  /// Task) runs in a frame that owns a copy of it, so its captures stay valid across
  /// every co_await; the Task is not kept (a failure is logged).
  template <class F>
  requires(std::is_invocable_v<F&> &&
           !std::is_same_v<std::decay_t<F>, std::function<void()>>) DelayedCall
      call_later(double delay, F fn) {
    return call_later(delay, detail::scheduled(std::move(fn)));
  }

  /// call_later with a std::chrono duration.
  template <class Rep, class Period, class F>
  DelayedCall call_later(std::chrono::duration<Rep, Period> delay, F fn) {
    return call_later(std::chrono::duration<double>(delay).count(), std::move(fn));
  }

  /// Pending calls in the order they will fire.
  std::vector<DelayedCall> pending_calls() const;

 protected:
  Scheduler() = default;
  /// Debug builds call this first in call_later: a scheduler bound to a thread throws
  /// std::logic_error, naming `what`, when called from another one. Does nothing here.
  virtual void check_thread(const char* what) const;
  detail::TimerQueue timers_;
};

}  // namespace torsion
