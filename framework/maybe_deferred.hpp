#pragma once
/// \file
/// maybe_deferred(fn, args...): calls a function that may return a plain value, void, a
/// Deferred or a Task, or throw, and always gives back a Deferred (Twisted's
/// maybeDeferred).

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "framework/deferred.hpp"
#include "framework/task.hpp"

namespace torsion {

/// Calls `fn(args...)` now and returns its result as a Deferred: a plain value gives a
/// Deferred that has fired with it, void a fired Deferred<void>, a Deferred or Task is
/// returned as it is (its result is waited for), and an exception thrown by `fn` gives a
/// Deferred that has failed with it. A coroutine function (returning a Task) runs in a
/// frame that owns a copy of `fn` and of `args`, so a coroutine lambda's captures stay
/// valid across its co_awaits even when the lambda was a temporary. So code that takes "a function that may or may not
/// be asynchronous" handles one kind of result, and a throw never escapes.
template <class F, class... Args>
[[nodiscard]] auto maybe_deferred(F&& fn, Args&&... args) {
  using R = std::decay_t<std::invoke_result_t<F&&, Args&&...>>;
  using U = typename std::conditional_t<detail::IsDeferred<R>::value, detail::Unwrap<R>,
                                        std::type_identity<R>>::type;
  try {
    if constexpr (detail::IsTask<R>::value) {
      // A coroutine function runs in a frame that owns a copy of it and of its
      // arguments: a coroutine lambda passed as a temporary keeps its captures.
      return Deferred<U>(detail::invoke_owned(std::decay_t<F>(std::forward<F>(fn)),
                                              std::decay_t<Args>(std::forward<Args>(args))...));
    } else if constexpr (detail::IsDeferred<R>::value) {
      return Deferred<U>(std::invoke(std::forward<F>(fn), std::forward<Args>(args)...));
    } else if constexpr (std::is_void_v<R>) {
      std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
      return succeed();
    } else {
      return succeed(std::invoke(std::forward<F>(fn), std::forward<Args>(args)...));
    }
  } catch (...) {
    return fail<U>(std::current_exception());
  }
}

}  // namespace torsion
