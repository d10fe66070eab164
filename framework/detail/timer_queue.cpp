#include "framework/detail/timer_queue.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>

#include "framework/log.hpp"

namespace torsion::detail {

TimerQueue::~TimerQueue() {
  // First detach every node, so that a callback's destructor that cancels or inspects
  // another call finds it finished rather than half way out of a dying heap.
  auto nodes = std::move(heap_);
  heap_.clear();
  for (TimerNode* node : nodes) {
    node->queue = nullptr;
    node->index = TimerNode::kCancelled;
  }
  for (TimerNode* node : nodes) {
    auto fn = std::move(node->fn);
    node->fn = nullptr;
    release(node);  // may free the node; fn (and what it owns) goes at the end of the turn
  }
}

void TimerQueue::sift_up(std::size_t i) {
  TimerNode* node = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(*node, *heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, node);
}

void TimerQueue::sift_down(std::size_t i) {
  TimerNode* node = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(*heap_[child + 1], *heap_[child])) ++child;
    if (!before(*heap_[child], *node)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, node);
}

TimerNode* TimerQueue::schedule(double when, std::function<void()> fn) {
  if (heap_.size() >= TimerNode::kMaxPending)
    throw std::length_error("call_later: " + std::to_string(heap_.size()) +
                            " calls are pending already, the most a scheduler holds");
  // Grow first, so that the push below cannot throw once the node exists.
  if (heap_.size() == heap_.capacity()) heap_.reserve(heap_.empty() ? 16 : heap_.size() * 2);
  auto* node = new TimerNode;
  node->fn = std::move(fn);
  node->when = when;
  node->seq = next_seq_++;
  node->queue = this;
  node->refs = 2;  // the heap's and the caller's
  heap_.push_back(node);
  sift_up(heap_.size() - 1);
  if (node->index == 0 && on_earlier_deadline) on_earlier_deadline(when);
  return node;
}

// Takes the node at `i` out of the heap; its reference passes to the caller.
void TimerQueue::remove_at(std::size_t i) {
  const std::size_t last = heap_.size() - 1;
  if (i != last) {
    place(i, heap_[last]);
    heap_.pop_back();
    // The moved node may belong above or below its new position.
    if (i > 0 && before(*heap_[i], *heap_[(i - 1) / 2]))
      sift_up(i);
    else
      sift_down(i);
  } else {
    heap_.pop_back();
  }
}

void TimerQueue::cancel(TimerNode& node) {
  remove_at(node.index);
  node.index = TimerNode::kCancelled;
  auto fn = std::move(node.fn);
  node.fn = nullptr;
  // The caller holds a handle, so this is not the last reference; fn is destroyed on
  // return and may own that handle, so the node is not touched after this line.
  release(&node);
}

void TimerQueue::reschedule(TimerNode& node, double when) {
  node.when = when;
  node.seq = next_seq_++;
  const std::size_t i = node.index;
  if (i > 0 && before(node, *heap_[(i - 1) / 2]))
    sift_up(i);
  else
    sift_down(i);
  if (node.index == 0 && on_earlier_deadline) on_earlier_deadline(when);
}

std::size_t TimerQueue::run_due(double until) {
  const std::uint64_t pass_end = next_seq_;
  std::size_t fired = 0;
  // Calls scheduled during the pass have seq >= pass_end; they may sit at the top of the
  // heap only if due, so stop at the first one rather than skipping over it.
  while (!heap_.empty() && heap_.front()->when <= until && heap_.front()->seq < pass_end) {
    TimerNode* node = heap_.front();
    remove_at(0);
    node->index = TimerNode::kCalled;
    auto fn = std::move(node->fn);
    node->fn = nullptr;
    release(node);  // the heap's reference; handles keep the node for called()/time()
    ++fired;
    try {
      fn();
    } catch (const std::exception& e) {
      log(LogLevel::error, std::string("unhandled exception in a delayed call: ") + e.what());
    } catch (...) {
      log(LogLevel::error, "unhandled non-standard exception in a delayed call");
    }
  }
  return fired;
}

std::vector<TimerNode*> TimerQueue::pending() const {
  auto out = heap_;
  std::sort(out.begin(), out.end(),
            [](const TimerNode* a, const TimerNode* b) { return before(*a, *b); });
  return out;
}

}  // namespace torsion::detail
