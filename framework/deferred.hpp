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
/// Calling add_* again on the same Deferred chains in place, as in Twisted: the steps
/// run in the order they were added, each getting the previous one's result, as long as
/// the type stays the same (a callback returning T on a Deferred<T>, an errback, an
/// add_both passing the Outcome on, void callbacks on a Deferred<void>):
///
///     d.add_callback(parse);   // int -> int
///     d.add_callback(check);   // gets what parse returned
///     d.add_errback(report);   // sees an error from any of them
///
/// A step that changes the type ends in-place chaining on that handle: the next add_*
/// there throws std::logic_error, naming the fix (chain on the Deferred<U> that step
/// returned); so does an add_* after co_await, gather or a TaskGroup took the result.
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
/// framework/deferred/core.hpp (Deferred, succeed, fail, and the errors a Deferred fails
/// with: CancelledError, TimeoutError; ProtocolGoneError comes from
/// framework/protocol_gone_error.hpp, which it includes) and
/// framework/deferred/combinators.hpp (deferred_list, gather, defer_later).

#include "framework/deferred/combinators.hpp"
#include "framework/deferred/core.hpp"
#include "framework/deferred/outcome.hpp"
