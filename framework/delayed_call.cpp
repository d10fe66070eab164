#include "framework/delayed_call.hpp"

#include <stdexcept>
#include <string>

#include "framework/detail/check_seconds.hpp"

namespace torsion {
namespace {

void check_delay(double seconds, const char* what) {
  detail::check_seconds(seconds, std::string(what) + ": delay");
}

}  // namespace

bool DelayedCall::cancel() {
  if (!active()) return false;
  node_->queue->cancel(*node_);
  return true;
}

bool DelayedCall::reset(double seconds) {
  check_delay(seconds, "DelayedCall::reset");
  if (!active()) return false;
  node_->queue->reschedule(*node_, node_->queue->now() + seconds);
  return true;
}

bool DelayedCall::delay(double seconds) {
  if (std::isnan(seconds)) throw std::invalid_argument("DelayedCall::delay: delay is NaN");
  if (!active()) return false;
  node_->queue->reschedule(*node_, node_->when + seconds);
  return true;
}

bool DelayedCall::active() const noexcept { return node_ && node_->pending(); }
bool DelayedCall::called() const noexcept { return node_ && node_->called(); }
bool DelayedCall::cancelled() const noexcept { return node_ && node_->cancelled(); }
double DelayedCall::time() const noexcept { return node_ ? node_->when : 0.0; }

Scheduler::~Scheduler() = default;

void Scheduler::check_thread(const char*) const {}

DelayedCall Scheduler::call_later(double delay, std::function<void()> fn) {
#ifndef NDEBUG
  check_thread("call_later");
#endif
  check_delay(delay, "call_later");
  if (!fn) throw std::invalid_argument("call_later: empty callback");
  if (!timers_.now) timers_.now = [this] { return seconds(); };
  return DelayedCall::adopt(timers_.schedule(seconds() + delay, std::move(fn)));
}

std::vector<DelayedCall> Scheduler::pending_calls() const {
  std::vector<DelayedCall> out;
  const auto nodes = timers_.pending();
  out.reserve(nodes.size());
  for (detail::TimerNode* node : nodes) {
    detail::retain(node);
    out.push_back(DelayedCall::adopt(node));
  }
  return out;
}

}  // namespace torsion
