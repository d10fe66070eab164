#pragma once
/// \file
/// Time-outs and cancellation scopes for coroutines and Deferreds.
///
///     std::string page = co_await with_timeout(reactor, 5, fetch(url));  // TimeoutError
///
///     CancelScope scope;
///     scope.cancel_after(reactor, 30);           // a deadline for everything below
///     auto a = co_await scope.run(fetch(x));     // cancelled by scope.cancel() or the
///     auto b = co_await scope.run(fetch(y));     // deadline, whichever comes first
///
/// Cancelling means Task::cancel / Deferred::cancel: the operation being awaited throws
/// CancelledError (a Stream read leaves its bytes buffered; framework/stream.hpp), and a
/// coroutine that is cancelled ends before whoever awaits it resumes.
/// Reactor (scheduler) thread only.

#include <memory>
#include <string>
#include <utility>

#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"
#include "framework/task.hpp"
#include "framework/task_group.hpp"

namespace torsion {

/// Runs `operation` (a Task, a Deferred, or a function returning one, see TaskGroup::spawn)
/// and gives its result; if it has not finished `seconds` from now on `scheduler`, it is
/// cancelled and the result fails with TimeoutError ("timed out after N s") once the
/// operation has ended. Cancelling the result cancels the operation. Throws
/// std::invalid_argument for a negative or NaN delay.
template <class A>
[[nodiscard]] auto with_timeout(Scheduler& scheduler, double seconds, A&& operation) {
  auto d = detail::to_deferred(std::forward<A>(operation));
  d.add_timeout(seconds, scheduler);
  return d;
}

/// A cancellation scope (Trio's CancelScope): every operation run through it is cancelled
/// by cancel() or when its deadline passes, and operations run after that fail at once
/// with CancelledError. Destroying the scope cancels what still runs in it.
/// Not copyable or movable.
class CancelScope {
 public:
  /// A scope with no deadline.
  CancelScope() : core_(std::make_shared<detail::ChildSet>()) {}
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;
  /// Cancels what still runs in the scope, and its deadline.
  ~CancelScope() {
    deadline_.cancel();
    core_->cancel_all();
  }

  /// Runs `operation` (a Task, a Deferred, or a function returning one) inside the
  /// scope: returns a Deferred (awaitable) of its result. If the scope is cancelled, the
  /// operation is cancelled and the result fails with CancelledError (TimeoutError when
  /// the deadline did it) once the operation has ended; a cancelled scope cancels new
  /// operations at once.
  template <class A>
  [[nodiscard]] auto run(A&& operation) {
    auto d = detail::to_deferred(std::forward<A>(operation));
    using T = typename decltype(d)::value_type;
    std::weak_ptr<detail::DeferredState<T>> inner = d.state();
    Deferred<T> out = detail::waiting_deferred<T>([inner] {
      if (auto p = inner.lock()) p->cancel();
    });
    core_->adopt(d, [o = out.state(), timed = timed_out_](Outcome<T>&& outcome) {
      if (o->fired()) return;
      if (!timed->empty() && !outcome.ok() && error_is<CancelledError>(outcome.error()))
        outcome = Outcome<T>::failure(std::make_exception_ptr(TimeoutError(*timed)));
      o->fire(std::move(outcome));
    });
    return out;
  }

  /// Cancels every operation running in the scope, and those run later.
  void cancel() { core_->cancel_all(); }

  /// Cancels the scope `seconds` from now on `scheduler` (replacing an earlier
  /// deadline); what it cancels then fails with TimeoutError. The scheduler must outlive
  /// the scope. Throws std::invalid_argument for a negative or NaN delay.
  void cancel_after(Scheduler& scheduler, double seconds) {
    detail::check_timeout(seconds);
    deadline_.cancel();
    std::weak_ptr<detail::ChildSet> weak = core_;
    deadline_ = scheduler.call_later(seconds, [weak, timed = timed_out_, seconds] {
      *timed = "deadline of " + std::to_string(seconds) + " s passed";
      if (auto c = weak.lock()) c->cancel_all();
    });
  }

  /// True once cancel() was called or the deadline passed.
  bool cancel_called() const noexcept { return core_->cancelling(); }
  /// How many operations run in the scope now.
  std::size_t size() const noexcept { return core_->running(); }

 private:
  std::shared_ptr<detail::ChildSet> core_;
  // Non-empty once the deadline passed: the TimeoutError's message.
  std::shared_ptr<std::string> timed_out_ = std::make_shared<std::string>();
  ScopedDelayedCall deadline_;
};

}  // namespace torsion
