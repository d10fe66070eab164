#pragma once
/// \file
/// Combinators over Deferreds: deferred_list, gather, defer_later. Part of
/// framework/deferred.hpp; include that.

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "framework/deferred/core.hpp"

namespace torsion {

/// Options for gather().
struct GatherOptions {
  /// Fail as soon as one input fails, without waiting for the others (Twisted's
  /// fireOnOneErrback). Default: wait for all, then fail with the error of the first
  /// input (in input order) that failed.
  bool first_error = false;
};

namespace detail {

template <class T>
Deferred<std::vector<Outcome<T>>> collect(std::vector<Deferred<T>> inputs, bool stop_on_error) {
  using Out = std::vector<Outcome<T>>;
  struct Collector {
    std::vector<std::optional<Outcome<T>>> slots;
    std::size_t left = 0;
    StatePtr<Out> out;
  };
  auto c = std::make_shared<Collector>();
  c->slots.resize(inputs.size());
  c->left = inputs.size();
  Deferred<Out> result;
  c->out = result.state();
  std::vector<std::weak_ptr<DeferredState<T>>> ups;
  for (auto& d : inputs) ups.push_back(d.state());
  result.state()->cancel_upstream_ = [ups] {
    for (auto& w : ups)
      if (auto p = w.lock()) p->cancel();
  };
  auto finish = [](Collector& col) {
    Out all;
    all.reserve(col.slots.size());
    for (auto& s : col.slots) all.push_back(std::move(*s));
    col.out->fire(Outcome<Out>::success(std::move(all)));
  };
  if (inputs.empty()) {
    finish(*c);
    return result;
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    inputs[i].state()->attach([c, i, stop_on_error, finish](Outcome<T>&& o) {
      if (c->out->fired()) return;  // an early error already decided (or it was cancelled)
      const bool failed = !o.ok();
      std::exception_ptr error = o.error();
      c->slots[i].emplace(std::move(o));
      if (failed && stop_on_error) {
        c->out->fire(Outcome<Out>::failure(error));
        return;
      }
      if (--c->left == 0) finish(*c);
    });
  }
  return result;
}

}  // namespace detail

/// DeferredList: fires, once every input has fired, with every input's Outcome in input
/// order; never fails (except with CancelledError when cancelled, which cancels every
/// input). Consumes the inputs, so their errors are never logged as unhandled.
template <class T>
[[nodiscard]] Deferred<std::vector<Outcome<T>>> deferred_list(std::vector<Deferred<T>> inputs) {
  return detail::collect(std::move(inputs), false);
}

/// Fires with every input's value, in input order, or fails (see GatherOptions). Inputs
/// that fail after the result is decided are consumed silently. Cancelling it cancels
/// every input.
template <class T>
requires(!std::is_void_v<T>)
    [[nodiscard]] Deferred<std::vector<T>> gather(std::vector<Deferred<T>> inputs,
                                                  GatherOptions options = {}) {
  return detail::collect(std::move(inputs), options.first_error)
      .add_callback([](std::vector<Outcome<T>> all) {
        std::vector<T> values;
        values.reserve(all.size());
        for (auto& o : all) values.push_back(std::move(o).value());  // rethrows the first error
        return values;
      });
}

/// gather() for Deferred<void>: fires when all have succeeded.
inline Deferred<void> gather(std::vector<Deferred<void>> inputs, GatherOptions options = {}) {
  return detail::collect(std::move(inputs), options.first_error)
      .add_callback([](std::vector<Outcome<void>> all) {
        for (auto& o : all) o.value();
      });
}

/// Calls `fn()` `delay` seconds from now on `scheduler` and fires the returned Deferred
/// with its result (a value, void, an exception, or the result of a returned Deferred).
/// Cancelling it before then cancels the call. `fn` must be copyable.
/// Throws std::invalid_argument for a negative or NaN delay.
template <class F>
auto defer_later(Scheduler& scheduler, double delay, F fn) {
  using R = std::invoke_result_t<F&>;
  using U = typename detail::Unwrap<std::decay_t<R>>::type;
  Deferred<U> d;
  auto state = d.state();
  DelayedCall call = scheduler.call_later(delay, [state, fn]() mutable {
    detail::resolve_with<U>(state, [&]() -> decltype(auto) { return fn(); });
  });
  state->canceller_ = [call](Deferred<U>&) mutable { call.cancel(); };
  return d;
}

}  // namespace torsion
