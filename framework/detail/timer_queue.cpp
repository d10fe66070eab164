#include "framework/detail/timer_queue.hpp"

#include <algorithm>
#include <exception>
#include <string>

#include "framework/log.hpp"

namespace torsion::detail {

TimerQueue::~TimerQueue() {
  for (auto& node : heap_) {
    node->queue = nullptr;
    node->state = TimerNode::State::cancelled;
  }
}

void TimerQueue::place(std::size_t i, std::shared_ptr<TimerNode> node) {
  node->index = i;
  heap_[i] = std::move(node);
}

void TimerQueue::sift_up(std::size_t i) {
  auto node = std::move(heap_[i]);
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(*node, *heap_[parent])) break;
    place(i, std::move(heap_[parent]));
    i = parent;
  }
  place(i, std::move(node));
}

void TimerQueue::sift_down(std::size_t i) {
  auto node = std::move(heap_[i]);
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(*heap_[child + 1], *heap_[child])) ++child;
    if (!before(*heap_[child], *node)) break;
    place(i, std::move(heap_[child]));
    i = child;
  }
  place(i, std::move(node));
}

std::shared_ptr<TimerNode> TimerQueue::schedule(double when, std::function<void()> fn) {
  auto node = std::make_shared<TimerNode>();
  node->when = when;
  node->seq = next_seq_++;
  node->queue = this;
  node->fn = std::move(fn);
  heap_.push_back(node);
  sift_up(heap_.size() - 1);
  if (node->index == 0 && on_earlier_deadline) on_earlier_deadline(when);
  return node;
}

void TimerQueue::remove_at(std::size_t i) {
  const std::size_t last = heap_.size() - 1;
  if (i != last) {
    place(i, std::move(heap_[last]));
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
  node.state = TimerNode::State::cancelled;
  auto keep = heap_[node.index];  // the handle may be the last owner after removal
  remove_at(node.index);
  node.fn = nullptr;
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
    auto node = heap_.front();
    remove_at(0);
    node->state = TimerNode::State::called;
    auto fn = std::move(node->fn);
    node->fn = nullptr;
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

std::vector<std::shared_ptr<TimerNode>> TimerQueue::pending() const {
  auto out = heap_;
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return before(*a, *b); });
  return out;
}

}  // namespace torsion::detail
