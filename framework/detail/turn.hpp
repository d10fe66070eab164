#pragma once
// Private: the loop's "turns", so that a transport can tell whether two writes were made
// before the loop got control back (and may leave in one send) or in different callbacks.
//
// A turn is one callback the loop hands control to: a stream engine's delivery or
// other I/O completion, one batch of call_soon callbacks, the timers due together, an idle
// callback, a call_from_thread function. Each opens a TurnScope at its top. Outside any
// scope (code run before the loop, a handler of raw Asio or of a transport that opens no
// scope) there is no current turn, and transports send every write at once.
//
// The end of a turn is an event: a transport that holds writes back (corks them) asks for
// turn_ended() with at_turn_end(), and the TurnScope calls it as the turn closes, before the
// loop gets control back. No post, no allocation: the waiting hooks form an intrusive list.
//
// Per thread, since one reactor runs on one thread.

#include <cstdint>

namespace torsion::detail {

// Odd while a turn runs, and then unique to it; even between turns.
inline thread_local std::uint64_t turn_state = 0;

// The current turn's number (odd), or 0 outside any turn.
inline std::uint64_t current_turn() noexcept { return (turn_state & 1) != 0 ? turn_state : 0; }

class TurnScope;

// Something to be told when the current turn ends (a stream engine with corked writes).
class TurnEndHook {
 public:
  TurnEndHook() = default;
  TurnEndHook(const TurnEndHook&) = delete;
  TurnEndHook& operator=(const TurnEndHook&) = delete;

  // Called once as the turn in which at_turn_end() was called ends, still inside it: writes
  // made from here are corked again and ask again, and the scope runs them too.
  virtual void turn_ended() noexcept = 0;

 protected:
  virtual ~TurnEndHook() { cancel_turn_end(); }

  // Asks for turn_ended() at the end of the current turn (call inside one). Idempotent.
  void at_turn_end() noexcept {
    if (waiting_) return;
    waiting_ = true;
    next_ = head();
    head() = this;
  }

  // Withdraws the request, if any (a walk of the waiting list, which is short).
  void cancel_turn_end() noexcept {
    if (!waiting_) return;
    for (TurnEndHook** p = &head(); *p != nullptr; p = &(*p)->next_) {
      if (*p == this) {
        *p = next_;
        break;
      }
    }
    waiting_ = false;
    next_ = nullptr;
  }

 private:
  friend class TurnScope;

  // The waiting hooks, newest first.
  static TurnEndHook*& head() noexcept {
    static thread_local TurnEndHook* list = nullptr;
    return list;
  }

  // Tells every waiting hook, including those that ask again meanwhile.
  static void run_all() noexcept {
    while (TurnEndHook* h = head()) {
      head() = h->next_;
      h->next_ = nullptr;
      h->waiting_ = false;
      h->turn_ended();
    }
  }

  TurnEndHook* next_ = nullptr;
  bool waiting_ = false;
};

// A turn, for the scope's lifetime: two increments of one thread-local and a test of the
// waiting list (the echo path opens one per read). Scopes sit at the top of the loop's
// callbacks, so they do not nest; if one did (a callback driving an io_context by hand),
// the code inside it would run outside any turn, its writes sent at once, and the outer
// turn would go on under a new number: less coalescing, nothing worse.
class TurnScope {
 public:
  TurnScope() noexcept { ++turn_state; }
  ~TurnScope() {
    if ((turn_state & 1) != 0) TurnEndHook::run_all();  // the outermost scope ends
    ++turn_state;
  }
  TurnScope(const TurnScope&) = delete;
  TurnScope& operator=(const TurnScope&) = delete;
};

}  // namespace torsion::detail
