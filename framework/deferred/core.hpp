#pragma once
/// \file
/// Deferred<T> itself: its shared state, callback chains, cancellation, time-outs,
/// co_await, succeed() and fail(). Part of framework/deferred.hpp (the model is described
/// there); include that.

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "framework/deferred/outcome.hpp"
#include "framework/deferred/unique_function.hpp"
#include "framework/delayed_call.hpp"
#include "framework/detail/protocol_scope.hpp"

namespace torsion {

/// The error a cancelled Deferred fails with (unless its canceller chose another).
class CancelledError : public std::runtime_error {
 public:
  /// "the operation was cancelled".
  CancelledError() : std::runtime_error("the operation was cancelled") {}
  /// With a message of the canceller's choosing.
  explicit CancelledError(const std::string& what) : std::runtime_error(what) {}
};

/// The error a Deferred fails with when add_timeout's delay passed before it fired.
class TimeoutError : public std::runtime_error {
 public:
  /// `what` is the message, e.g. "timed out after 5.000000 s" from add_timeout.
  explicit TimeoutError(const std::string& what) : std::runtime_error(what) {}
};

/// Thrown by callback()/errback() on a Deferred that has already fired (a programming
/// error). Firing a Deferred that was cancelled is silently ignored instead.
class AlreadyCalledError : public std::logic_error {
 public:
  /// The message: "Deferred: callback or errback on a fired Deferred".
  AlreadyCalledError() : std::logic_error("Deferred: callback or errback on a fired Deferred") {}
};

template <class T>
class Deferred;
template <class T = void>
class Task;  // framework/task.hpp

namespace detail {

void log_unhandled_error(const std::exception_ptr& error);

template <class T>
struct IsDeferred : std::false_type {};
template <class T>
struct IsDeferred<Deferred<T>> : std::true_type {};
template <class T>
struct IsDeferred<Task<T>> : std::true_type {};  // a coroutine's result is waited for too

// Calls fn(args...), a coroutine function, inside a coroutine whose frame owns `fn` (a
// coroutine's parameters live in its frame): the captures of a coroutine lambda stay
// valid until the coroutine ends, whoever held the lambda before. Costs one more frame.
template <class F, class... Args>
std::invoke_result_t<F&, Args&&...> invoke_owned(F fn, Args... args) {
  co_return co_await std::invoke(fn, std::move(args)...);
}

// Calls `f(args...)` for the last time: a coroutine function (one returning a Task) is
// moved into the frame of the coroutine that runs it (invoke_owned); anything else is
// called in place.
template <class F, class... Args>
decltype(auto) call_last(F& f, Args&&... args) {
  if constexpr (IsTask<std::decay_t<std::invoke_result_t<F&, Args&&...>>>::value)
    return invoke_owned(std::move(f), std::forward<Args>(args)...);
  else
    return std::invoke(f, std::forward<Args>(args)...);
}

// A callable that forwards its calls to `fn`. When `fn` is a coroutine function, each
// call runs a copy of it inside the coroutine's own frame (invoke_owned), so the
// coroutine never refers to a copy its caller may drop: for functions called many times,
// such as a server's per-connection handler.
template <class F>
auto coroutine_owning(F fn) {
  return [fn = std::move(fn)](auto&&... args) mutable -> decltype(auto) {
    using R = std::invoke_result_t<F&, decltype(args)...>;
    if constexpr (IsTask<std::decay_t<R>>::value)
      return invoke_owned(fn, std::forward<decltype(args)>(args)...);
    else
      return std::invoke(fn, std::forward<decltype(args)>(args)...);
  };
}

template <class R>
struct Unwrap {
  using type = R;
};
template <class U>
struct Unwrap<Deferred<U>> {
  using type = U;
};
template <class U>
struct Unwrap<Task<U>> {
  using type = U;
};
template <class U>
struct Unwrap<Outcome<U>> {
  using type = U;
};

// The one shared state behind every handle on a Deferred.
template <class T>
class DeferredState : public std::enable_shared_from_this<DeferredState<T>> {
 public:
  using Consumer = UniqueFunction<void(Outcome<T>&&)>;

  DeferredState() = default;
  DeferredState(const DeferredState&) = delete;
  DeferredState& operator=(const DeferredState&) = delete;
  ~DeferredState() {
    if (result_ && !result_->ok()) log_unhandled_error(result_->error());
  }

  // Fires with `outcome`. Ignored after a cancel; AlreadyCalledError otherwise if fired.
  void fire(Outcome<T>&& outcome) {
    if (fired_) {
      if (cancelled_) return;
      throw AlreadyCalledError();
    }
    fired_ = true;
    auto keep = this->shared_from_this();
    canceller_ = nullptr;
    cancel_upstream_ = nullptr;
    timeout_.cancel();
    if (timed_out_ && !outcome.ok() && error_is<CancelledError>(outcome.error()))
      outcome = Outcome<T>::failure(std::make_exception_ptr(TimeoutError(
          "timed out after " + std::to_string(timeout_seconds_) + " s")));
    if (consumer_) {
      auto consumer = std::move(consumer_);
      consumer_ = nullptr;
      consumer(std::move(outcome));
    } else {
      result_.emplace(std::move(outcome));
    }
  }

  // Sets the consumer; runs it now if the result is there. `next` is the state the
  // consumer fires when that has the same type (an add_* step), null otherwise. Once a
  // step has taken the result, a later attach goes to the end of the chain (Twisted's
  // in-place chaining) while the type stays T; after a step that changed it, it throws.
  void attach(Consumer consumer, std::shared_ptr<DeferredState<T>> next = nullptr,
              const char* changed_to = nullptr) {
    if (consumed_) {
      if (tail_) return tail_->attach(std::move(consumer), std::move(next), changed_to);
      std::rethrow_exception(refusal());
    }
    consumed_ = true;
    tail_ = std::move(next);
    changed_to_ = changed_to;
    if (result_) {
      auto outcome = std::move(*result_);
      result_.reset();
      consumer(std::move(outcome));
    } else {
      consumer_ = std::move(consumer);
    }
  }

  // Why attach would refuse a consumer now (std::logic_error: another consumer took the
  // result, or a step changed the type), or null when it would accept one.
  std::exception_ptr refusal() const {
    if (!consumed_) return nullptr;
    if (tail_) return tail_->refusal();
    return std::make_exception_ptr(std::logic_error(
        changed_to_ ? "Deferred: this chain now carries another type (a callback changed it): "
                      "add the next step to the Deferred that the step which changed it returned"
                    : "Deferred: it already has a consumer (co_await, gather or a TaskGroup "
                      "took its result)"));
  }

  bool ready() const noexcept { return result_.has_value() && !consumed_; }
  Outcome<T> take() {
    consumed_ = true;
    auto outcome = std::move(*result_);
    result_.reset();
    return outcome;
  }
  bool fired() const noexcept { return fired_; }
  bool consumed() const noexcept { return consumed_; }
  // Destroys the consumer without calling it (a coroutine frame that waits on it is
  // destroyed with it).
  void drop_consumer() {
    auto consumer = std::move(consumer_);
    consumer_ = nullptr;
  }

  bool cancel();

  UniqueFunction<void(Deferred<T>&)> canceller_;
  UniqueFunction<void()> cancel_upstream_;  // cancels what this state waits for
  // Set by producers that always fire after a cancel request (a Task: when its coroutine
  // ends; a TaskGroup's join: when its children have ended): cancel() then only asks.
  bool cancel_waits_ = false;
  DelayedCall timeout_;
  double timeout_seconds_ = 0;
  bool timed_out_ = false;

 private:
  std::optional<Outcome<T>> result_;
  Consumer consumer_;
  std::shared_ptr<DeferredState<T>> tail_;  // the next step, while it has the same type
  const char* changed_to_ = nullptr;        // set when the next step changed the type
  bool fired_ = false;
  bool consumed_ = false;
  bool cancelled_ = false;
};

template <class T>
using StatePtr = std::shared_ptr<DeferredState<T>>;

// Runs `fn` and fires `target` with what it returns: a value, nothing (void), an
// exception, or the eventual result of a returned Deferred.
template <class U, class Fn>
void resolve_with(const StatePtr<U>& target, Fn&& fn);

}  // namespace detail

/// A result that will arrive later; see the file comment for the model. Copies are
/// handles on the same Deferred. Reactor thread only.
template <class T>
class Deferred {
 public:
  /// The type of the value it fires with.
  using value_type = T;
  /// Called by cancel() while the Deferred has not fired; may fire it (with any result),
  /// otherwise cancel() fails it with CancelledError afterwards.
  using Canceller = detail::UniqueFunction<void(Deferred<T>&)>;

  /// A new Deferred that has not fired.
  Deferred() : s_(std::make_shared<detail::DeferredState<T>>()) {}
  /// A new Deferred whose cancel() calls `canceller` first (to stop the work behind it).
  explicit Deferred(Canceller canceller) : Deferred() { s_->canceller_ = std::move(canceller); }

  /// Fires with a value: the chain runs now. Throws AlreadyCalledError if it has fired
  /// (ignored if it was cancelled: the producer need not know).
  template <class U = T>
    requires(!std::is_void_v<T> && std::is_constructible_v<T, U &&>)
  void callback(U&& value) {
    s_->fire(Outcome<T>::success(T(std::forward<U>(value))));
  }
  /// Fires a Deferred<void>.
  void callback()
    requires std::is_void_v<T>
  {
    s_->fire(Outcome<T>::success());
  }
  /// Fires with an error (must not be null); errbacks run now. Same rules as callback().
  void errback(std::exception_ptr error) {
    if (!error) throw std::invalid_argument("Deferred::errback: null exception_ptr");
    s_->fire(Outcome<T>::failure(std::move(error)));
  }
  /// Fires with the exception object `e` (any type derived from std::exception).
  template <class E>
    requires std::derived_from<std::decay_t<E>, std::exception>
  void errback(E&& e) {
    errback(std::make_exception_ptr(std::forward<E>(e)));
  }
  /// Fires with a ready outcome.
  void resolve(Outcome<T> outcome) { s_->fire(std::move(outcome)); }

  /// True once it has fired (by callback, errback or cancel).
  bool called() const noexcept { return s_->fired(); }
  /// True once a consumer (add_*, co_await, gather) has taken or will take its result.
  bool consumed() const noexcept { return s_->consumed(); }

  /// Cancels: if it has not fired, calls the canceller, or cancels the Deferred this one
  /// is waiting for (the previous link of its chain, or a Deferred a callback returned);
  /// if it still has not fired then, fails it with CancelledError (except a Task's
  /// Deferred, which fires when its coroutine ends: framework/task.hpp). Returns false
  /// (and does nothing) if it had already fired. Later callback()/errback() calls are
  /// ignored.
  bool cancel() { return s_->cancel(); }

  /// Calls `f(value)` (or `f()` for Deferred<void>) on success; errors skip it. Returns
  /// the Deferred of what `f` returns (a value, void, or a Deferred or Task to wait for).
  /// An exception thrown by `f` fails the returned Deferred.
  template <class F>
  auto add_callback(F f);

  /// Calls `f(std::exception_ptr)` on failure; values skip it. `f` recovers by returning
  /// a T (nothing for void) or a Deferred<T>, and propagates by throwing (rethrow it with
  /// std::rethrow_exception). Returns the Deferred<T> of the rest of the chain.
  template <class F>
  Deferred<T> add_errback(F f);

  /// Calls `f(const E&)` when the error is an E (or derived), like Twisted's trap; other
  /// errors pass through. `f` recovers as in add_errback.
  template <class E, class F>
  Deferred<T> catch_error(F f);

  /// `on_value` on success, `on_error(std::exception_ptr)` on failure; both must return
  /// the same type (or a Deferred of it). Returns the Deferred of that type.
  template <class F, class G>
  auto add_callbacks(F on_value, G on_error);

  /// Calls `f(Outcome<T>)` whatever happens (cleanup, logging, converting). Returns the
  /// Deferred of what `f` returns; a callback returning an Outcome<U> (such as the one it
  /// was given) fires the next Deferred<U> with it, so `return o;` passes the result on.
  template <class F>
  auto add_both(F f);

  /// Cancels this Deferred if it has not fired `seconds` from now on `scheduler`; a
  /// CancelledError that results becomes TimeoutError. The timer is dropped when it fires
  /// earlier. Returns *this. Throws std::invalid_argument for a negative or NaN delay.
  /// The scheduler must outlive the pending timer (Deferred handles may outlive it).
  Deferred<T>& add_timeout(double seconds, Scheduler& scheduler);

  /// For co_await in a Task (see framework/task.hpp): suspends until it fires, then gives
  /// the value or throws the error. Awaiting consumes the Deferred; awaiting one whose
  /// result another consumer took (a step that changed its type, another co_await,
  /// gather) throws std::logic_error at the co_await, where the coroutine may catch it.
  auto operator co_await() const&;
  /// As above, for an rvalue Deferred.
  auto operator co_await() &&;

  /// Internal: the shared state.
  const detail::StatePtr<T>& state() const noexcept { return s_; }
  /// Internal: a handle on existing state (Task and the combinators use it).
  explicit Deferred(detail::StatePtr<T> state) : s_(std::move(state)) {}

 private:
  template <class U>
  Deferred<U> chained() const {
    auto next = std::make_shared<detail::DeferredState<U>>();
    std::weak_ptr<detail::DeferredState<T>> up = s_;
    next->cancel_upstream_ = [up] {
      if (auto p = up.lock()) p->cancel();
    };
    return Deferred<U>(std::move(next));
  }

  // Gives `consumer` (which fires `next`) this Deferred's result, or, if an earlier step
  // took it, the result at the end of the chain (see DeferredState::attach).
  template <class U, class C>
  void attach_step(const Deferred<U>& next, C&& consumer) {
    if constexpr (std::is_same_v<U, T>)
      s_->attach(std::forward<C>(consumer), next.state());
    else
      s_->attach(std::forward<C>(consumer), nullptr, "another type");
  }

  detail::StatePtr<T> s_;
};

namespace detail {

template <class F, class T>
struct CallbackResult {
  using type = std::invoke_result_t<F&, T&&>;
};
template <class F>
struct CallbackResult<F, void> {
  using type = std::invoke_result_t<F&>;
};

template <class U, class Fn>
void resolve_with(const StatePtr<U>& target, Fn&& fn) {
  using R = decltype(fn());
  if constexpr (IsDeferred<std::decay_t<R>>::value) {
    static_assert(std::is_same_v<typename std::decay_t<R>::value_type, U>,
                  "a callback returned a Deferred of the wrong type");
    std::optional<Deferred<U>> inner;  // a Task converts to its Deferred
    try {
      inner.emplace(fn());
    } catch (...) {
      target->fire(Outcome<U>::failure(std::current_exception()));
      return;
    }
    std::weak_ptr<DeferredState<U>> w = inner->state();
    target->cancel_upstream_ = [w] {
      if (auto p = w.lock()) p->cancel();
    };
    try {
      inner->state()->attach([target](Outcome<U>&& r) { target->fire(std::move(r)); });
    } catch (...) {
      target->fire(Outcome<U>::failure(std::current_exception()));
    }
  } else if constexpr (std::is_void_v<R>) {
    static_assert(std::is_void_v<U>, "a callback returned void where a value was needed");
    try {
      fn();
    } catch (...) {
      target->fire(Outcome<U>::failure(std::current_exception()));
      return;
    }
    target->fire(Outcome<U>::success());
  } else if constexpr (std::is_same_v<std::decay_t<R>, Outcome<U>>) {
    std::optional<Outcome<U>> out;
    try {
      out.emplace(fn());
    } catch (...) {
      out.emplace(Outcome<U>::failure(std::current_exception()));
    }
    target->fire(std::move(*out));
  } else {
    static_assert(!std::is_void_v<U>, "a callback returned a value where void was needed");
    std::optional<Outcome<U>> out;
    try {
      out.emplace(Outcome<U>::success(U(fn())));
    } catch (...) {
      out.emplace(Outcome<U>::failure(std::current_exception()));
    }
    target->fire(std::move(*out));
  }
}

template <class T>
bool DeferredState<T>::cancel() {
  if (fired_) return false;
  cancelled_ = true;
  auto keep = this->shared_from_this();
  if (canceller_) {
    auto canceller = std::move(canceller_);
    canceller_ = nullptr;
    Deferred<T> self(keep);
    canceller(self);
  } else if (cancel_upstream_) {
    auto up = std::move(cancel_upstream_);
    cancel_upstream_ = nullptr;
    up();
  }
  if (!fired_ && !cancel_waits_) {
    cancelled_ = false;  // let this one through
    fire(Outcome<T>::failure(std::make_exception_ptr(CancelledError())));
    cancelled_ = true;
  }
  return true;
}

// A value callback's step: `n` is resolved with what `f` returns for the value of `o`
// (called with no argument for Deferred<void>). `o` holds a value.
template <class U, class T, class F>
void resolve_with_value(const StatePtr<U>& n, F& f, Outcome<T>&& o) {
  if constexpr (std::is_void_v<T>) {
    resolve_with<U>(n, [&]() -> decltype(auto) { return call_last(f); });
  } else {
    resolve_with<U>(n, [&]() -> decltype(auto) { return call_last(f, std::move(o).value()); });
  }
}

}  // namespace detail

template <class T>
template <class F>
auto Deferred<T>::add_callback(F f) {
  using R = typename detail::CallbackResult<F, T>::type;
  using U = typename detail::Unwrap<std::decay_t<R>>::type;
  Deferred<U> next = chained<U>();
  attach_step(next, [n = next.state(),
                     f = detail::bind_to_owner(std::move(f))](Outcome<T>&& o) mutable {
    if (!o.ok()) {
      n->fire(Outcome<U>::failure(o.error()));
      return;
    }
    detail::resolve_with_value<U>(n, f, std::move(o));
  });
  return next;
}

template <class T>
template <class F>
Deferred<T> Deferred<T>::add_errback(F f) {
  Deferred<T> next = chained<T>();
  attach_step(next, [n = next.state(),
                     f = detail::bind_to_owner(std::move(f))](Outcome<T>&& o) mutable {
    if (o.ok()) {
      n->fire(std::move(o));
      return;
    }
    detail::resolve_with<T>(n, [&]() -> decltype(auto) { return detail::call_last(f, o.error()); });
  });
  return next;
}

template <class T>
template <class E, class F>
Deferred<T> Deferred<T>::catch_error(F f) {
  return add_errback([f = std::move(f)](std::exception_ptr error) mutable {
    try {
      std::rethrow_exception(error);
    } catch (const E& e) {
      return f(e);
    }
  });
}

template <class T>
template <class F, class G>
auto Deferred<T>::add_callbacks(F on_value, G on_error) {
  using R = typename detail::CallbackResult<F, T>::type;
  using U = typename detail::Unwrap<std::decay_t<R>>::type;
  Deferred<U> next = chained<U>();
  attach_step(next, [n = next.state(), f = detail::bind_to_owner(std::move(on_value)),
                     g = detail::bind_to_owner(std::move(on_error))](Outcome<T>&& o) mutable {
    if (!o.ok()) {
      detail::resolve_with<U>(n, [&]() -> decltype(auto) { return detail::call_last(g, o.error()); });
    } else {
      detail::resolve_with_value<U>(n, f, std::move(o));
    }
  });
  return next;
}

template <class T>
template <class F>
auto Deferred<T>::add_both(F f) {
  using R = std::invoke_result_t<F&, Outcome<T>&&>;
  using U = typename detail::Unwrap<std::decay_t<R>>::type;
  Deferred<U> next = chained<U>();
  attach_step(next, [n = next.state(),
                     f = detail::bind_to_owner(std::move(f))](Outcome<T>&& o) mutable {
    detail::resolve_with<U>(n, [&]() -> decltype(auto) { return detail::call_last(f, std::move(o)); });
  });
  return next;
}

namespace detail {
void check_timeout(double seconds);
}

template <class T>
Deferred<T>& Deferred<T>::add_timeout(double seconds, Scheduler& scheduler) {
  detail::check_timeout(seconds);
  if (s_->fired()) return *this;
  s_->timeout_.cancel();
  s_->timeout_seconds_ = seconds;
  std::weak_ptr<detail::DeferredState<T>> w = s_;
  s_->timeout_ = scheduler.call_later(seconds, [w] {
    if (auto p = w.lock()) {
      p->timed_out_ = true;
      p->cancel();
    }
  });
  return *this;
}

namespace detail {

// The awaiter behind co_await on a Deferred. It does not keep the Deferred alive while
// suspended: whoever fires it does. If the Deferred is destroyed without firing, the
// waiting coroutine frame is destroyed with it (its locals' destructors run), so nothing
// leaks and nothing resumes from a dead producer.
template <class T>
class DeferredAwaiter {
 public:
  explicit DeferredAwaiter(StatePtr<T> state) : s_(std::move(state)) {}
  DeferredAwaiter(const DeferredAwaiter&) = delete;
  DeferredAwaiter& operator=(const DeferredAwaiter&) = delete;

  bool await_ready() const noexcept { return s_->ready(); }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    // Refused (another consumer took the result): the error is thrown by await_resume,
    // at the co_await, without suspending. Never through attach: the Resume it was given
    // would destroy this very frame as the exception unwound.
    if (auto refused = s_->refusal()) {
      slot_.emplace(Outcome<T>::failure(std::move(refused)));
      return false;
    }
    if constexpr (requires { h.promise().set_awaited_cancel(UniqueFunction<bool()>()); }) {
      std::weak_ptr<DeferredState<T>> w = s_;
      h.promise().set_awaited_cancel([w] {
        auto p = w.lock();
        return p && p->cancel();
      });
    }
    auto state = std::move(s_);
    attaching_ = true;
    state->attach(Resume(h, this));
    attaching_ = false;
    return !slot_.has_value();  // fired while attaching: go on without suspending
    // `state` may be the last owner: dropping it may destroy this frame; nothing below
    // touches the awaiter.
  }

  T await_resume() {
    if (!slot_) slot_.emplace(s_->take());
    if constexpr (std::is_void_v<T>)
      slot_->value();
    else
      return std::move(*slot_).value();
  }

 private:
  class Resume {
   public:
    Resume(std::coroutine_handle<> h, DeferredAwaiter* a) : h_(h), a_(a) {}
    Resume(Resume&& o) noexcept : h_(std::exchange(o.h_, nullptr)), a_(o.a_) {}
    Resume& operator=(Resume&&) = delete;
    ~Resume() {
      if (h_) h_.destroy();
    }
    void operator()(Outcome<T>&& o) {
      auto h = std::exchange(h_, nullptr);
      a_->slot_.emplace(std::move(o));
      if (!a_->attaching_) h.resume();
    }

   private:
    std::coroutine_handle<> h_;
    DeferredAwaiter* a_;
  };

  StatePtr<T> s_;
  std::optional<Outcome<T>> slot_;
  bool attaching_ = false;
};

}  // namespace detail

template <class T>
auto Deferred<T>::operator co_await() const& {
  return detail::DeferredAwaiter<T>(s_);
}
template <class T>
auto Deferred<T>::operator co_await() && {
  return detail::DeferredAwaiter<T>(std::move(s_));
}

/// A Deferred that has already fired with `value`.
template <class T>
[[nodiscard]] Deferred<std::decay_t<T>> succeed(T&& value) {
  Deferred<std::decay_t<T>> d;
  d.callback(std::forward<T>(value));
  return d;
}
/// A Deferred<void> that has already fired.
[[nodiscard]] inline Deferred<void> succeed() {
  Deferred<void> d;
  d.callback();
  return d;
}
/// A Deferred<T> that has already failed with `error`.
template <class T>
[[nodiscard]] Deferred<T> fail(std::exception_ptr error) {
  Deferred<T> d;
  d.errback(std::move(error));
  return d;
}
/// A Deferred<T> that has already failed with the exception object `e`.
template <class T, class E>
  requires std::derived_from<std::decay_t<E>, std::exception>
  [[nodiscard]] Deferred<T> fail(E&& e) {
    return fail<T>(std::make_exception_ptr(std::forward<E>(e)));
  }

}  // namespace torsion
