#include "framework/looping_call.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

namespace torsion {

namespace {

void settle(Deferred<void>& done, const Outcome<void>& outcome) {
  if (outcome.ok())
    done.callback();
  else
    done.errback(outcome.error());
}

}  // namespace

LoopingCall::~LoopingCall() {
  stop();
  *self_ = nullptr;  // a Deferred still awaited settles start()'s Deferred by itself
}

Deferred<void> LoopingCall::start(double interval, bool now) {
  if (!(interval > 0) || std::isinf(interval))
    throw std::invalid_argument(
        "LoopingCall::start: interval must be a positive, finite number of seconds, got " +
        std::to_string(interval));
  if (running_) throw std::logic_error("LoopingCall::start: already running");
  if (waiting_)
    throw std::logic_error(
        "LoopingCall::start: still waiting for the Deferred the function returned before "
        "stop(); start again once the last start()'s Deferred has fired");
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
  if (waiting_) return;  // start()'s Deferred fires when the awaited Deferred does
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
  if (wait_fn_) return call_and_wait(count);
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

// The Deferred/Task form: call, then wait for what the function returned (Twisted's
// maybeDeferred): a throw counts as a failed Deferred.
void LoopingCall::call_and_wait(std::uint64_t count) {
  waiting_ = true;
  std::shared_ptr<WaitFunction> fn = wait_fn_;  // outlives this object while waited for
  Deferred<void> done = done_;
  std::optional<Deferred<void>> result;
  try {
    result.emplace((*fn)(count));
  } catch (...) {
    result.emplace(fail<void>(std::current_exception()));
  }
  try {
    result->add_both([self = self_, fn, done](Outcome<void> outcome) mutable {
      (void)fn;  // held only to keep the function alive
      if (LoopingCall* loop = *self)
        loop->waited(outcome, std::move(done));
      else
        settle(done, outcome);  // destroyed while waiting: only start()'s Deferred is left
    });
  } catch (...) {  // the Deferred already had a consumer (std::logic_error)
    waited(Outcome<void>::failure(std::current_exception()), std::move(done));
  }
}

void LoopingCall::waited(const Outcome<void>& outcome, Deferred<void> done) {
  waiting_ = false;
  if (outcome.ok() && running_) {
    // The next boundary strictly after now; the intervals spent waiting count as missed.
    schedule_next(std::max(interval_index(scheduler_.seconds()), last_index_));
    return;
  }
  running_ = false;
  call_.cancel();
  settle(done, outcome);
}

}  // namespace torsion
