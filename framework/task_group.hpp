#pragma once
/// \file
/// Structured concurrency for coroutines (asyncio.TaskGroup, Trio's nursery): TaskGroup,
/// and first_of / race, which run several operations and keep the first to finish.
///
///     TaskGroup group;
///     group.spawn([&]() -> Task<void> { co_await fetch(a); });
///     group.spawn([&]() -> Task<void> { co_await fetch(b); });
///     co_await group;   // both ended; the first error (if any) is rethrown here
///
/// What the group promises:
///  - When a child fails (with anything but CancelledError), every other child is
///    cancelled (Task::cancel) and the group's join() fails with that first error once
///    every child has ended. Later errors are dropped.
///  - Cancelling join() (or the Task awaiting it) or calling cancel() cancels every
///    child; join() then fails with CancelledError (or the first error), again only once
///    every child has ended. Children that catch CancelledError and clean up are waited
///    for: code after `co_await group` never runs beside a child.
///  - Destroying a group whose join() has not finished cancels the children still
///    running (a child that catches the CancelledError and awaits again keeps running;
///    await join() to be sure all have ended). An error nobody joined is logged.
///  - A child destroyed without ending (what it awaited was destroyed unfired, as when
///    its reactor goes away) means the group can never end properly: join() never fires
///    and a coroutine awaiting it is destroyed the same way (framework/task.hpp).
/// Works as a Deferred too: join() is a Deferred<void>. Reactor thread only.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/task.hpp"

namespace torsion {

namespace detail {

// Whatever spawn, first_of and the cancel scope accept, as a Deferred<T>: a Deferred, a
// Task, or a function (called now) returning either. A coroutine function is run in a
// frame that owns it (its captures live as long as the coroutine).
template <class A>
auto to_deferred(A&& a) {
  using D = std::decay_t<A>;
  if constexpr (IsDeferred<D>::value) {
    return Deferred<typename D::value_type>(std::forward<A>(a));
  } else {
    static_assert(std::is_invocable_v<D&>,
                  "expected a Deferred, a Task, or a function returning one");
    using R = std::decay_t<std::invoke_result_t<D&>>;
    static_assert(IsDeferred<R>::value, "the function must return a Deferred or a Task");
    D fn(std::forward<A>(a));
    return Deferred<typename R::value_type>(call_last(fn));
  }
}

template <class A>
using DeferredValue = typename decltype(to_deferred(std::declval<A>()))::value_type;

// The children of a group, scope or server: each is a Deferred whose consumer this core
// installs. It can cancel them all and tells when none is left. Children keep the core
// alive (their consumers hold it); the core holds them weakly.
class ChildSet : public std::enable_shared_from_this<ChildSet> {
 public:
  // Takes `child`'s result: `on_end(outcome)` runs when it fires, then the child is
  // forgotten and, if it was the last, the idle waiters fire. `child` is cancelled at
  // once if cancel_all() was called.
  template <class T, class OnEnd>
  void adopt(const Deferred<T>& child, OnEnd on_end) {
    const std::uint64_t id = next_id_++;
    std::weak_ptr<DeferredState<T>> w = child.state();
    cancels_.emplace(id, [w] {
      if (auto p = w.lock()) p->cancel();
    });
    ++running_;
    child.state()->attach([token = Token(shared_from_this(), id), id, on_end = std::move(on_end)](
                              Outcome<T>&& outcome) mutable {
      auto self = token.release();
      self->cancels_.erase(id);
      on_end(std::move(outcome));
      if (--self->running_ == 0) self->fire_idle();
    });
    if (cancelling_ && cancels_.count(id)) cancel_one(id);
  }

  // Cancels every running child (and every child adopted from now on).
  void cancel_all() {
    cancelling_ = true;
    std::vector<std::uint64_t> ids;
    for (auto& [id, fn] : cancels_) ids.push_back(id);
    for (auto id : ids)
      if (cancels_.count(id)) cancel_one(id);
  }

  // Calls `fn` once no child runs (at once if none does). If a child was destroyed
  // without ending, `fn` is destroyed without being called instead.
  void when_idle(UniqueFunction<void()> fn) {
    if (lost_child_) return;
    if (running_ == 0) {
      fn();
      return;
    }
    idle_.push_back(std::move(fn));
  }

  std::size_t running() const noexcept { return running_; }
  bool cancelling() const noexcept { return cancelling_; }

 private:
  void cancel_one(std::uint64_t id) {
    auto cancel = std::move(cancels_.at(id));
    cancels_.at(id) = [] {};
    cancel();
  }
  // Held by a child's consumer: if the consumer is destroyed without running (what the
  // child waited for was destroyed unfired, and the child's frame with it), the set can
  // never tell a true end, so whoever waits for it is dropped the same way.
  class Token {
   public:
    Token(std::shared_ptr<ChildSet> set, std::uint64_t id) : set_(std::move(set)), id_(id) {}
    Token(Token&& other) noexcept : set_(std::move(other.set_)), id_(other.id_) {}
    Token& operator=(Token&&) = delete;
    ~Token() {
      if (set_) set_->dropped(id_);
    }
    std::shared_ptr<ChildSet> release() noexcept { return std::move(set_); }

   private:
    std::shared_ptr<ChildSet> set_;
    std::uint64_t id_;
  };

  void dropped(std::uint64_t id) {
    auto keep = shared_from_this();
    cancels_.erase(id);
    lost_child_ = true;
    if (--running_ == 0) fire_idle();
  }

  void fire_idle() {
    auto idle = std::move(idle_);
    idle_.clear();
    if (lost_child_) return;  // dropped unrun with `idle`
    for (auto& fn : idle) fn();
  }

  std::map<std::uint64_t, UniqueFunction<void()>> cancels_;
  std::vector<UniqueFunction<void()>> idle_;
  std::uint64_t next_id_ = 0;
  std::size_t running_ = 0;
  bool cancelling_ = false;
  bool lost_child_ = false;
};

// A Deferred<T> that cancel() only asks to stop: it fires when its producer says so.
template <class T>
Deferred<T> waiting_deferred(UniqueFunction<void()> on_cancel) {
  Deferred<T> d;
  d.state()->cancel_waits_ = true;
  auto shared = std::make_shared<UniqueFunction<void()>>(std::move(on_cancel));
  // Re-armed on each call, so every cancel() reaches the producer.
  struct Arm {
    static void arm(const StatePtr<T>& s, std::shared_ptr<UniqueFunction<void()>> fn) {
      std::weak_ptr<DeferredState<T>> w = s;
      s->canceller_ = [w, fn](Deferred<T>&) {
        if (auto p = w.lock()) arm(p, fn);
        (*fn)();
      };
    }
  };
  Arm::arm(d.state(), std::move(shared));
  return d;
}

}  // namespace detail

/// A set of child tasks whose lifetime the group bounds; see the file comment.
/// Not copyable or movable.
class TaskGroup {
 public:
  /// An empty group.
  TaskGroup() : core_(std::make_shared<detail::ChildSet>()), state_(std::make_shared<State>()) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  /// Cancels the children still running unless join() has finished; logs an error that
  /// no join() reported.
  ~TaskGroup() {
    if (!state_->closed) core_->cancel_all();
    if (state_->first_error && !state_->error_reported) detail::log_unhandled_error(state_->first_error);
  }

  /// Starts a child: `child` is a coroutine function (run at once, in a frame that owns
  /// it, so its captures live as long as it does), or a function returning a Deferred, or
  /// a Task or Deferred already running. Its value is dropped; its error fails the group.
  /// Throws std::logic_error once join() has finished.
  template <class A>
  void spawn(A&& child) {
    if (state_->closed) throw std::logic_error("TaskGroup::spawn: the group has been joined");
    auto d = detail::to_deferred(std::forward<A>(child));
    using T = typename decltype(d)::value_type;
    core_->adopt(d, [state = state_, core = std::weak_ptr<detail::ChildSet>(core_)](
                        Outcome<T>&& outcome) {
      if (outcome.ok() || error_is<CancelledError>(outcome.error())) return;
      if (state->first_error) return;
      state->first_error = outcome.error();
      if (auto c = core.lock()) c->cancel_all();
    });
  }

  /// Cancels every child (and any spawned later); join() then fails with CancelledError
  /// unless a child failed first.
  void cancel() {
    state_->cancelled = true;
    core_->cancel_all();
  }

  /// Fires once no child runs: fails with the first child error, or CancelledError if
  /// the group was cancelled, else succeeds. Once it has fired the group is closed (spawn
  /// throws). Cancelling it cancels the group (it still waits for the children). Call it
  /// once.
  [[nodiscard]] Deferred<void> join() {
    if (state_->joined) throw std::logic_error("TaskGroup::join: already joined");
    state_->joined = true;
    std::weak_ptr<detail::ChildSet> weak = core_;
    std::weak_ptr<State> wstate = state_;
    Deferred<void> d = detail::waiting_deferred<void>([weak, wstate] {
      if (auto s = wstate.lock()) s->cancelled = true;
      if (auto c = weak.lock()) c->cancel_all();
    });
    core_->when_idle([state = state_, out = d.state()] {
      state->closed = true;
      if (out->fired()) return;
      if (state->first_error) {
        state->error_reported = true;
        out->fire(Outcome<void>::failure(state->first_error));
      } else if (state->cancelled) {
        out->fire(Outcome<void>::failure(std::make_exception_ptr(CancelledError())));
      } else {
        out->fire(Outcome<void>::success());
      }
    });
    return d;
  }

  /// `co_await group;` is `co_await group.join();`.
  auto operator co_await() { return join().operator co_await(); }

  /// How many children are running.
  std::size_t size() const noexcept { return core_->running(); }

 private:
  struct State {
    std::exception_ptr first_error;
    bool cancelled = false;
    bool joined = false;
    bool closed = false;
    bool error_reported = false;
  };
  std::shared_ptr<detail::ChildSet> core_;
  std::shared_ptr<State> state_;
};

/// What first_of gives: which input finished first, and its value.
template <class T>
struct FirstOf {
  /// The winner's position among the inputs.
  std::size_t index;
  /// The winner's value.
  T value;
};

namespace detail {

template <class T>
struct FirstState {
  std::optional<Outcome<T>> winner;
  std::size_t index = 0;
};

template <class T>
auto first_result(FirstState<T>& s) {
  if constexpr (std::is_void_v<T>) {
    s.winner->value();
    return s.index;
  } else {
    return FirstOf<T>{s.index, std::move(*s.winner).value()};
  }
}

}  // namespace detail

/// Runs the inputs together and keeps the first to finish, with a value or an error: the
/// others are cancelled, and the result fires once all of them have ended (their results
/// are dropped). Gives FirstOf<T>{index, value} (the index alone for void), or the
/// winner's error. Cancelling the result cancels every input (it then fails with
/// CancelledError). Throws std::invalid_argument for no inputs.
template <class T>
[[nodiscard]] Deferred<std::conditional_t<std::is_void_v<T>, std::size_t, FirstOf<T>>> first_of(
    std::vector<Deferred<T>> inputs) {
  using R = std::conditional_t<std::is_void_v<T>, std::size_t, FirstOf<T>>;
  if (inputs.empty()) throw std::invalid_argument("first_of: no inputs");
  auto core = std::make_shared<detail::ChildSet>();
  auto state = std::make_shared<detail::FirstState<T>>();
  std::weak_ptr<detail::ChildSet> weak = core;
  Deferred<R> out = detail::waiting_deferred<R>([weak] {
    if (auto c = weak.lock()) c->cancel_all();
  });
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    core->adopt(inputs[i], [state, weak, i](Outcome<T>&& o) {
      if (state->winner) return;
      state->winner.emplace(std::move(o));
      state->index = i;
      if (auto c = weak.lock()) c->cancel_all();
    });
  }
  core->when_idle([state, o = out.state()] {
    if (o->fired()) return;
    detail::resolve_with<R>(o, [&] { return detail::first_result(*state); });
  });
  return out;
}

/// first_of for a few operations of the same type (Deferreds, Tasks, or functions
/// returning them): `auto [i, v] = co_await race(fetch(a), fetch(b));`.
template <class A, class... B>
[[nodiscard]] auto race(A&& first, B&&... rest) {
  using T = detail::DeferredValue<A>;
  static_assert((std::is_same_v<T, detail::DeferredValue<B>> && ...),
                "race: every input must give the same type");
  std::vector<Deferred<T>> inputs;
  inputs.push_back(detail::to_deferred(std::forward<A>(first)));
  (inputs.push_back(detail::to_deferred(std::forward<B>(rest))), ...);
  return first_of(std::move(inputs));
}

}  // namespace torsion
