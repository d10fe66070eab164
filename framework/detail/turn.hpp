#pragma once
// Private: the loop's "turns", so that a transport can tell whether two writes were made
// before the loop got control back (and may leave in one send) or in different callbacks.
//
// A turn is one callback the loop hands control to: a stream transport's delivery or
// other I/O completion, one batch of call_soon callbacks, the timers due together, an idle
// callback, a call_from_thread function. Each opens a TurnScope at its top. Outside any
// scope (code run before the loop, a handler of raw Asio or of a transport that opens no
// scope) there is no current turn, and transports send every write at once.
//
// Per thread, since one reactor runs on one thread.

#include <cstdint>

namespace torsion::detail {

// Odd while a turn runs, and then unique to it; even between turns.
inline thread_local std::uint64_t turn_state = 0;

// The current turn's number (odd), or 0 outside any turn.
inline std::uint64_t current_turn() noexcept { return (turn_state & 1) != 0 ? turn_state : 0; }

// A turn, for the scope's lifetime: two increments of one thread-local, nothing else (the
// echo path opens one per read). Scopes sit at the top of the loop's callbacks, so they do
// not nest; if one did (a callback driving an io_context by hand), the code inside it would
// run outside any turn, its writes sent at once, and the outer turn would go on under a
// new number: less coalescing, nothing worse.
class TurnScope {
 public:
  TurnScope() noexcept { ++turn_state; }
  ~TurnScope() { ++turn_state; }
  TurnScope(const TurnScope&) = delete;
  TurnScope& operator=(const TurnScope&) = delete;
};

}  // namespace torsion::detail
