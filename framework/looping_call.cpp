#include "framework/looping_call.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace torsion {

LoopingCall::~LoopingCall() { stop(); }

Deferred<void> LoopingCall::start(double interval, bool now) {
  if (!(interval > 0) || std::isinf(interval))
    throw std::invalid_argument(
        "LoopingCall::start: interval must be a positive, finite number of seconds, got " +
        std::to_string(interval));
  if (running_) throw std::logic_error("LoopingCall::start: already running");
  running_ = true;
  interval_ = interval;
  start_time_ = scheduler_.seconds();
  calls_ = 0;
  missed_ = 0;
  done_ = Deferred<void>();
  Deferred<void> result = done_;
  if (now) {
    last_index_ = -1;
    fire();
  } else {
    last_index_ = 0;
    schedule_next(0);
  }
  return result;
}

void LoopingCall::stop() {
  if (!running_) return;
  running_ = false;
  call_.cancel();
  Deferred<void> done = done_;
  done.callback();
}

// Which interval `t` falls in; a tiny tolerance keeps 0.3 / 0.1 in interval 3, not 2.
std::int64_t LoopingCall::interval_index(double t) const {
  return static_cast<std::int64_t>(std::floor((t - start_time_) / interval_ + 1e-9));
}

void LoopingCall::schedule_next(std::int64_t after_index) {
  const double next = start_time_ + static_cast<double>(after_index + 1) * interval_;
  const double delay = next - scheduler_.seconds();
  call_ = scheduler_.call_later(delay > 0 ? delay : 0, [this] { fire(); });
}

void LoopingCall::fire() {
  const std::int64_t index = interval_index(scheduler_.seconds());
  if (index <= last_index_) {  // woke up early (clock granularity): wait for the boundary
    schedule_next(last_index_);
    return;
  }
  const auto count = static_cast<std::uint64_t>(index - last_index_);
  missed_ += count - 1;
  last_index_ = index;
  ++calls_;
  try {
    fn_(count);
  } catch (...) {
    if (running_) {
      running_ = false;
      call_.cancel();
      Deferred<void> done = done_;
      done.errback(std::current_exception());
    }
    return;
  }
  if (running_) schedule_next(index);
}

}  // namespace torsion
