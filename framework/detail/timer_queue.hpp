#pragma once
// Private: the heap of pending DelayedCalls shared by the reactor and the manual clock.
//
// Memory per pending call (the issue asks for at most 64 bytes beyond the callback):
//
//   TimerNode, 64 bytes, one allocation:  [ fn (std::function, 32) | when | seq | queue |
//                                           index (u32) | refs (u32) ]
//   heap slot: one TimerNode* (8 bytes, x ~1.05 for the vector's growth)
//
// so 32 bytes of bookkeeping plus 8 of heap slot beyond the std::function that holds the
// callback (malloc adds its own 16-byte header). The node is reference counted by hand:
// the heap owns one reference while the call is pending, each DelayedCall handle one.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

namespace torsion::detail {

class TimerQueue;

struct TimerNode {
  // `index` is the node's position in the heap while it is pending; once it is not, it
  // holds one of these instead.
  static constexpr std::uint32_t kCalled = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint32_t kCancelled = kCalled - 1;
  static constexpr std::uint32_t kMaxPending = kCancelled;

  std::function<void()> fn;
  double when = 0;
  std::uint64_t seq = 0;
  TimerQueue* queue = nullptr;  // null once the queue is gone
  std::uint32_t index = kCancelled;
  std::uint32_t refs = 0;  // the heap's reference while pending, plus one per handle

  bool pending() const noexcept { return index < kMaxPending && queue != nullptr; }
  bool called() const noexcept { return index == kCalled; }
  bool cancelled() const noexcept { return index == kCancelled; }
};

static_assert(sizeof(TimerNode) <= sizeof(std::function<void()>) + 32,
              "a pending timer's bookkeeping must stay within 32 bytes beyond its callback");

// Adds a reference to `node` (null is allowed).
inline void retain(TimerNode* node) noexcept {
  if (node) ++node->refs;
}
// Drops a reference; the last one frees the node.
inline void release(TimerNode* node) noexcept {
  if (node && --node->refs == 0) delete node;
}

// A binary min-heap ordered by (when, seq): equal deadlines fire in the order they were
// scheduled. Cancel and reschedule are O(log n) and release the callback at once.
class TimerQueue {
 public:
  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;
  ~TimerQueue();

  // Returns the new node with one reference added for the caller (who must release it).
  TimerNode* schedule(double when, std::function<void()> fn);
  void cancel(TimerNode& node);
  void reschedule(TimerNode& node, double when);

  // Fires, in deadline order, every call due at `until` that was scheduled before this pass
  // began; calls scheduled while it runs wait for the next pass. Returns how many fired.
  std::size_t run_due(double until);

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  // Earliest deadline; only meaningful when !empty().
  double next_deadline() const noexcept { return heap_.front()->when; }
  // Pending calls in firing order (no references added: use them before the queue changes).
  std::vector<TimerNode*> pending() const;

  // Called whenever a new earliest deadline appears (the reactor re-arms its timer).
  std::function<void(double)> on_earlier_deadline;
  // The owner's clock, used by DelayedCall::reset.
  std::function<double()> now;

 private:
  static bool before(const TimerNode& a, const TimerNode& b) noexcept {
    return a.when < b.when || (a.when == b.when && a.seq < b.seq);
  }
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void remove_at(std::size_t i);
  void place(std::size_t i, TimerNode* node) noexcept {
    node->index = static_cast<std::uint32_t>(i);
    heap_[i] = node;
  }

  std::vector<TimerNode*> heap_;  // each slot owns one reference to its node
  std::uint64_t next_seq_ = 0;
};

}  // namespace torsion::detail
