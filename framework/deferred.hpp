#pragma once
/// \file
/// Deferred<T>: a result that is not there yet, with Twisted-style callback and errback
/// chains, cancellation, time-outs and gathering.
///
/// The type system in one paragraph. A `Deferred<T>` is a cheap, copyable handle on one
/// shared state that is fired once, with a value of type `T` (`callback`) or with an error
/// carried as a `std::exception_ptr` (`errback`). `add_callback(f)` and friends do not
/// mutate the chain in place as Twisted does; they return a NEW `Deferred<U>` for the rest
/// of the chain, where `U` is what `f` returns (a plain value, `void`, or the `U` of a
/// returned `Deferred<U>`, whose result the chain then waits for). So a chain that changes
/// type reads naturally:
///
///     Deferred<std::string> page = fetch(...);
///     Deferred<std::size_t> size = page.add_callback([](std::string s) { return s.size(); });
///
/// Each Deferred has at most ONE consumer: the first add_* call (or co_await, or gather)
/// takes its result; a second one throws std::logic_error. Chain on what add_* returned.
/// Callbacks run synchronously, from inside callback()/errback() when the Deferred fires
/// later, or from inside add_* when it has already fired (as in Twisted). An exception
/// thrown by a callback becomes the error of the next Deferred in the chain; an errback
/// recovers by returning a value (or a Deferred) and propagates by rethrowing.
///
/// A Deferred that holds an error nobody consumed logs it (framework/log.hpp, level
/// error) when its last handle goes away: errors never vanish silently.
/// Deferreds are not thread-safe: use them on one thread (the reactor's). To fire one from
/// another thread, go through Reactor::call_from_thread (see thread_pool.hpp).///
/// The parts: framework/deferred/outcome.hpp (Outcome, error helpers),
/// framework/deferred/unique_function.hpp (the move-only function chains hold),
/// framework/deferred/core.hpp (Deferred, succeed, fail) and
/// framework/deferred/combinators.hpp (deferred_list, gather, defer_later).

#include "framework/deferred/combinators.hpp"
#include "framework/deferred/core.hpp"
#include "framework/deferred/outcome.hpp"
