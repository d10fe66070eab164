#pragma once
// Private: the heap of pending DelayedCalls shared by the reactor and the manual clock.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace torsion::detail {

class TimerQueue;

struct TimerNode {
  enum class State : std::uint8_t { pending, called, cancelled };
  double when = 0;
  std::uint64_t seq = 0;
  std::size_t index = 0;  // position in the heap while pending
  State state = State::pending;
  TimerQueue* queue = nullptr;  // null once the queue is gone
  std::function<void()> fn;
};

// A binary min-heap ordered by (when, seq): equal deadlines fire in the order they were
// scheduled. Cancel and reschedule are O(log n) and release the callback at once.
class TimerQueue {
 public:
  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;
  ~TimerQueue();

  std::shared_ptr<TimerNode> schedule(double when, std::function<void()> fn);
  void cancel(TimerNode& node);
  void reschedule(TimerNode& node, double when);

  // Fires, in deadline order, every call due at `until` that was scheduled before this pass
  // began; calls scheduled while it runs wait for the next pass. Returns how many fired.
  std::size_t run_due(double until);

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  // Earliest deadline; only meaningful when !empty().
  double next_deadline() const noexcept { return heap_.front()->when; }
  // Pending calls in firing order.
  std::vector<std::shared_ptr<TimerNode>> pending() const;

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
  void place(std::size_t i, std::shared_ptr<TimerNode> node);

  std::vector<std::shared_ptr<TimerNode>> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace torsion::detail
