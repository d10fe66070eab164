#pragma once
/// \file
/// Queue, Lock, Semaphore and Event for code on one reactor: each waiting operation
/// returns a Deferred, so the same object serves coroutines (`co_await q.get()`) and
/// Deferred chains (Twisted's DeferredQueue, DeferredLock, DeferredSemaphore).
///
///     Queue<std::string> q(16);            // at most 16 items queued
///     co_await q.put(line);                // waits while the queue is full
///     std::string next = co_await q.get(); // waits while it is empty
///
/// Common rules:
///  - Waiters are served first come, first served. A waiter is woken inside the call
///    that wakes it (put, release, set...), as Twisted's are.
///  - Cancelling a waiting get/put/acquire/wait removes the waiter: it fails with
///    CancelledError and takes nothing (no item, no permit). An operation that need not
///    wait returns a Deferred that has already fired.
///  - Bounded: a Queue holds at most max_size items, and at most max_waiting gets and
///    max_waiting puts may wait at once (one more fails with QueueOverflow); a Semaphore
///    or Lock accepts at most max_waiting waiters the same way.
///  - Destroying the object drops its waiters without firing them: a coroutine waiting
///    on it is destroyed (as when any awaited Deferred is destroyed unfired, see
///    framework/task.hpp).
/// Reactor thread only.

#include <cstddef>
#include <deque>
#include <iterator>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "framework/deferred.hpp"

namespace torsion {

/// A put or get on a full Queue, or an acquire, found max_waiting waiters already.
class QueueOverflow : public std::runtime_error {
 public:
  /// What() says which limit.
  explicit QueueOverflow(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {

struct NoPayload {};

// A FIFO of waiting Deferreds, each with what it brings (a put's item). Cancelling a
// waiting Deferred removes it. Destroying the list drops the waiters unfired.
template <class R, class Payload = NoPayload>
class WaitList {
 public:
  struct Entry {
    Payload payload;
    StatePtr<R> state;
  };

  explicit WaitList(std::size_t max_waiting) : max_(max_waiting) {}
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() {
    auto entries = std::move(*list_);
    list_->clear();
    for (auto& e : entries) {
      e.state->canceller_ = nullptr;
      e.state->drop_consumer();
    }
  }

  // A new waiter at the back, or QueueOverflow (`what` names the operation).
  Deferred<R> push(Payload payload, const char* what) {
    if (list_->size() >= max_)
      throw QueueOverflow(std::string(what) + ": " + std::to_string(max_) + " already waiting");
    Deferred<R> d;
    list_->push_back(Entry{std::move(payload), d.state()});
    auto it = std::prev(list_->end());
    std::weak_ptr<std::list<Entry>> w = list_;
    d.state()->canceller_ = [w, it](Deferred<R>&) {
      if (auto l = w.lock()) l->erase(it);
    };
    return d;
  }

  bool empty() const noexcept { return list_->empty(); }
  std::size_t size() const noexcept { return list_->size(); }
  // The first waiter, removed; fire it at once.
  Entry pop() {
    Entry e = std::move(list_->front());
    list_->pop_front();
    e.state->canceller_ = nullptr;
    return e;
  }

 private:
  std::shared_ptr<std::list<Entry>> list_ = std::make_shared<std::list<Entry>>();
  std::size_t max_;
};

// A Deferred that fails with `e` now, for an operation refused before it waited.
template <class R, class F>
Deferred<R> refuse(F&& op) {
  try {
    return op();
  } catch (const QueueOverflow&) {
    return fail<R>(std::current_exception());
  }
}

}  // namespace detail

class Semaphore;

/// A permit held from a Semaphore (or Lock): released when destroyed, or by release().
/// Move-only. A permit outliving its semaphore releases nothing.
class [[nodiscard]] Permit {
 public:
  /// An empty permit (holds nothing).
  Permit() = default;
  Permit(Permit&& other) noexcept : sem_(std::move(other.sem_)) {}
  /// Releases the permit held now, then takes over `other`'s.
  Permit& operator=(Permit&& other) noexcept {
    if (this != &other) {
      release();
      sem_ = std::move(other.sem_);
    }
    return *this;
  }
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  /// Releases the permit if still held.
  ~Permit() { release(); }
  /// Gives the permit back now (idempotent).
  inline void release() noexcept;
  /// True while the permit is held.
  explicit operator bool() const noexcept { return !sem_.expired(); }

 private:
  friend class Semaphore;
  explicit Permit(std::weak_ptr<void> sem) : sem_(std::move(sem)) {}
  std::weak_ptr<void> sem_;
};

/// A counting semaphore (Twisted's DeferredSemaphore): at most `tokens` holders at once.
/// Not copyable or movable.
class Semaphore {
 public:
  /// `tokens` >= 1 permits; at most `max_waiting` acquires wait at once (QueueOverflow
  /// after that). Throws std::invalid_argument for 0 tokens.
  explicit Semaphore(std::size_t tokens, std::size_t max_waiting = 1024)
      : core_(std::make_shared<Core>(tokens, max_waiting)) {
    if (tokens == 0) throw std::invalid_argument("Semaphore: tokens must be >= 1");
  }
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  /// Drops the waiters (see the file comment).
  ~Semaphore() = default;

  /// Fires when a permit is taken for the caller (at once if one is free and nobody
  /// waits). Pair it with release(); acquire_permit() releases by itself.
  [[nodiscard]] Deferred<void> acquire() {
    return detail::refuse<void>([&] { return core_->acquire(); });
  }
  /// Gives a permit back: the first waiter (if any) gets it now. Throws std::logic_error
  /// when every permit is already free.
  void release() { core_->release(); }

  /// acquire() as a Permit that releases when destroyed:
  /// `Permit p = co_await sem.acquire_permit();`.
  [[nodiscard]] Deferred<Permit> acquire_permit() {
    std::weak_ptr<Core> w = core_;
    return acquire().add_callback([w]() { return Permit(std::weak_ptr<void>(w)); });
  }

  /// Twisted's run: acquires, calls `fn()` (which may return a value, a Deferred or a
  /// Task), releases when its result is there, and gives that result. A coroutine
  /// function runs in a frame that owns it.
  template <class F>
  [[nodiscard]] auto run(F fn) {
    return acquire_permit().add_callback([fn = std::move(fn)](Permit p) mutable {
      using R = std::invoke_result_t<F&>;
      using U = typename detail::Unwrap<std::decay_t<R>>::type;
      auto permit = std::make_shared<Permit>(std::move(p));
      Deferred<U> d;
      detail::resolve_with<U>(d.state(), [&]() -> decltype(auto) { return detail::call_last(fn); });
      return d.add_both([permit](Outcome<U> o) {
        permit->release();
        return o;
      });
    });
  }

  /// Free permits now.
  std::size_t available() const noexcept { return core_->tokens; }
  /// Acquires waiting now.
  std::size_t waiting() const noexcept { return core_->waiters.size(); }

 private:
  friend class Permit;
  struct Core {
    Core(std::size_t n, std::size_t max_waiting) : tokens(n), limit(n), waiters(max_waiting) {}
    Deferred<void> acquire() {
      if (tokens > 0 && waiters.empty()) {
        --tokens;
        return succeed();
      }
      return waiters.push({}, "Semaphore::acquire");
    }
    void release() {
      if (!waiters.empty()) {
        waiters.pop().state->fire(Outcome<void>::success());  // the permit passes on
        return;
      }
      if (tokens >= limit) throw std::logic_error("Semaphore::release: nothing to release");
      ++tokens;
    }
    std::size_t tokens;
    std::size_t limit;
    detail::WaitList<void> waiters;
  };
  std::shared_ptr<Core> core_;
};

inline void Permit::release() noexcept {
  auto sem = std::static_pointer_cast<Semaphore::Core>(sem_.lock());
  sem_.reset();
  if (sem) sem->release();
}

/// A mutual-exclusion lock for coroutines and Deferreds (Twisted's DeferredLock): a
/// Semaphore with one permit. `Permit held = co_await lock.acquire_permit();`
class Lock {
 public:
  /// An unlocked lock; at most `max_waiting` acquires may wait.
  explicit Lock(std::size_t max_waiting = 1024) : sem_(1, max_waiting) {}
  /// Fires once the lock is the caller's. Pair it with release().
  [[nodiscard]] Deferred<void> acquire() { return sem_.acquire(); }
  /// Unlocks; the first waiter gets the lock now. std::logic_error if not locked.
  void release() { sem_.release(); }
  /// acquire() as a Permit that unlocks when destroyed.
  [[nodiscard]] Deferred<Permit> acquire_permit() { return sem_.acquire_permit(); }
  /// Runs `fn` holding the lock (see Semaphore::run).
  template <class F>
  [[nodiscard]] auto run(F fn) {
    return sem_.run(std::move(fn));
  }
  /// True while held.
  bool locked() const noexcept { return sem_.available() == 0; }
  /// Acquires waiting now.
  std::size_t waiting() const noexcept { return sem_.waiting(); }

 private:
  Semaphore sem_;
};

/// A flag that coroutines and Deferreds can wait for (asyncio.Event).
/// Not copyable or movable.
class Event {
 public:
  /// A clear event; at most `max_waiting` waits at once.
  explicit Event(std::size_t max_waiting = 1024) : waiters_(max_waiting) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Fires once the event is set (at once if it is).
  [[nodiscard]] Deferred<void> wait() {
    if (set_) return succeed();
    return detail::refuse<void>([&] { return waiters_.push({}, "Event::wait"); });
  }
  /// Sets the event and wakes every waiter (now, in order).
  void set() {
    set_ = true;
    // Those waiting now, even if one of them clears the event again.
    for (std::size_t n = waiters_.size(); n > 0 && !waiters_.empty(); --n)
      waiters_.pop().state->fire(Outcome<void>::success());
  }
  /// Clears it: later wait()s wait again.
  void clear() noexcept { set_ = false; }
  /// True while set.
  bool is_set() const noexcept { return set_; }

 private:
  bool set_ = false;
  detail::WaitList<void> waiters_;
};

/// A bounded FIFO queue between coroutines or Deferred chains (Twisted's DeferredQueue,
/// asyncio.Queue): put waits while it is full (back-pressure), get while it is empty.
/// Not copyable or movable.
template <class T>
class Queue {
 public:
  /// At most `max_size` (>= 1) items queued; at most `max_waiting` gets, and as many
  /// puts, wait at once. Throws std::invalid_argument for max_size 0.
  explicit Queue(std::size_t max_size, std::size_t max_waiting = 1024)
      : max_size_(max_size), getters_(max_waiting), putters_(max_waiting) {
    if (max_size == 0) throw std::invalid_argument("Queue: max_size must be >= 1");
  }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  /// Adds `item`: fires at once if there is room (or a get is waiting: it gets the item
  /// now), else once a get makes room. Cancelling a waiting put drops its item.
  [[nodiscard]] Deferred<void> put(T item) {
    if (try_put(item)) return succeed();
    return detail::refuse<void>([&] { return putters_.push(std::move(item), "Queue::put"); });
  }
  /// Adds `item` if that needs no wait; false (item untouched) when full.
  bool try_put(T& item) {
    if (!getters_.empty()) {
      getters_.pop().state->fire(Outcome<T>::success(std::move(item)));
      return true;
    }
    if (items_.size() >= max_size_) return false;
    items_.push_back(std::move(item));
    return true;
  }
  /// As above, for an rvalue item (dropped when full).
  bool try_put(T&& item) { return try_put(item); }

  /// The oldest item: at once if one is queued, else when a put brings one.
  [[nodiscard]] Deferred<T> get() {
    if (auto item = try_get()) return succeed(std::move(*item));
    return detail::refuse<T>([&] { return getters_.push({}, "Queue::get"); });
  }
  /// The oldest item if one is queued (a waiting put then moves in).
  std::optional<T> try_get() {
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    if (!putters_.empty()) {
      auto e = putters_.pop();
      items_.push_back(std::move(e.payload));
      e.state->fire(Outcome<void>::success());
    }
    return item;
  }

  /// Items queued.
  std::size_t size() const noexcept { return items_.size(); }
  /// True when nothing is queued.
  bool empty() const noexcept { return items_.empty(); }
  /// True when a put would wait.
  bool full() const noexcept { return items_.size() >= max_size_; }
  /// Gets waiting now.
  std::size_t waiting_gets() const noexcept { return getters_.size(); }
  /// Puts waiting now.
  std::size_t waiting_puts() const noexcept { return putters_.size(); }

 private:
  std::size_t max_size_;
  std::deque<T> items_;
  detail::WaitList<T> getters_;
  detail::WaitList<void, T> putters_;
};

}  // namespace torsion
