#include "protocols/timeout.hpp"

#include "framework/detail/check_seconds.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace torsion {

namespace {
void check_period(double seconds, const char* who) {
  detail::check_seconds(seconds, std::string(who) + ": the time-out period");
}
}  // namespace

TimeoutMixin::TimeoutMixin(Scheduler& scheduler, Protocol& protocol)
    : scheduler_(scheduler), protocol_(protocol) {}

TimeoutMixin::~TimeoutMixin() { call_.cancel(); }

std::optional<double> TimeoutMixin::set_timeout(std::optional<double> seconds) {
  if (seconds) check_period(*seconds, "set_timeout");
  const std::optional<double> previous = std::exchange(period_, seconds);
  call_.cancel();
  call_ = {};
  if (period_) {
    call_ = scheduler_.call_later(*period_, [this] {
      period_.reset();
      timeout_connection();
    });
  }
  return previous;
}

void TimeoutMixin::reset_timeout() {
  if (period_) call_.reset(*period_);
}

void TimeoutMixin::timeout_connection() {
  if (protocol_.has_transport()) protocol_.transport().abort_connection();
}

namespace {

// Aborts the connection after a period without traffic either way.
class TimeoutProtocol final : public ProtocolWrapper, public TimeoutMixin {
 public:
  TimeoutProtocol(WrappingFactory& factory, std::unique_ptr<Protocol> inner, Address peer,
                  Scheduler& scheduler, double seconds)
      : ProtocolWrapper(factory, std::move(inner), std::move(peer)),
        TimeoutMixin(scheduler, *this),
        seconds_(seconds) {}

  void connection_made() override {
    set_timeout(seconds_);
    ProtocolWrapper::connection_made();
  }
  void data_received(std::string_view data) override {
    reset_timeout();
    ProtocolWrapper::data_received(data);
  }
  void connection_lost(const Reason& reason) override {
    set_timeout(std::nullopt);
    ProtocolWrapper::connection_lost(reason);
  }

 protected:
  void write_bytes(std::string_view data) override {
    reset_timeout();
    ProtocolWrapper::write_bytes(data);
  }
  void write_owned(std::string&& data) override {
    reset_timeout();
    ProtocolWrapper::write_owned(std::move(data));
  }
  void write_parts(std::span<const std::string_view> parts) override {
    reset_timeout();
    ProtocolWrapper::write_parts(parts);
  }

 private:
  double seconds_;
};

}  // namespace

TimeoutFactory::TimeoutFactory(Factory& wrapped, Scheduler& scheduler, double seconds)
    : WrappingFactory(wrapped), scheduler_(scheduler), seconds_(seconds) {
  check_period(seconds, "TimeoutFactory");
}

std::unique_ptr<ProtocolWrapper> TimeoutFactory::wrap(std::unique_ptr<Protocol> inner,
                                                      const Address& peer) {
  return std::make_unique<TimeoutProtocol>(*this, std::move(inner), peer, scheduler_, seconds_);
}

// --- LineDeadlineFactory -----------------------------------------------------------------

// Aborts the connection when a line stays incomplete for too long. It keeps no copy of the
// line: only whether one is pending and its last delimiter-size - 1 bytes (carry_), enough
// to find a delimiter split across reads.
class LineDeadlineProtocol final : public ProtocolWrapper {
 public:
  LineDeadlineProtocol(LineDeadlineFactory& factory, std::unique_ptr<Protocol> inner,
                       Address peer)
      : ProtocolWrapper(factory, std::move(inner), std::move(peer)), policy_(factory) {}
  ~LineDeadlineProtocol() override { timer_.cancel(); }

  void data_received(std::string_view data) override {
    if (expired_ || data.empty()) return;
    const bool was_pending = pending_;
    const std::string& delim = policy_.delimiter_;
    const std::size_t d = delim.size();
    bool found = false;
    std::size_t pos = 0;  // in data: just after the last delimiter found
    if (!carry_.empty()) {
      // A delimiter that begins in carry_ ends in data; carry_ itself holds none.
      std::string joint = carry_;
      joint.append(data.substr(0, d - 1));
      const std::size_t at = joint.find(delim);
      if (at != std::string::npos) {
        found = true;
        pos = at + d - carry_.size();
      }
    }
    for (std::size_t at; (at = data.find(delim, pos)) != std::string_view::npos;) {
      found = true;
      pos = at + d;
    }
    if (found) {
      const std::string_view tail = data.substr(pos);
      pending_ = !tail.empty();
      carry_.assign(tail.substr(tail.size() - std::min(tail.size(), d - 1)));
    } else {
      pending_ = true;
      carry_.append(data.substr(data.size() - std::min(data.size(), d - 1)));
      if (carry_.size() > d - 1) carry_.erase(0, carry_.size() - (d - 1));
    }
    // A line that began in this read starts a fresh countdown; a line still pending from
    // an earlier read keeps the countdown it had.
    if (!pending_)
      stop_countdown();
    else if (found || !was_pending)
      start_countdown(policy_.seconds_);
    ProtocolWrapper::data_received(data);
  }

  // While the wrapped protocol has paused reading, the peer cannot be blamed for a slow
  // line: the countdown is suspended, and resumes with the time it had left.
  void pause_producing() override {
    if (!reading_paused_) {
      reading_paused_ = true;
      if (timer_.active()) {
        suspended_ = std::max(0.0, timer_.time() - policy_.scheduler_.seconds());
        timer_.cancel();
      }
    }
    ProtocolWrapper::pause_producing();
  }
  void resume_producing() override {
    if (reading_paused_) {
      reading_paused_ = false;
      if (suspended_) start_countdown(*std::exchange(suspended_, std::nullopt));
    }
    ProtocolWrapper::resume_producing();
  }

  void connection_lost(const Reason& reason) override {
    stop_countdown();
    if (!expired_) return ProtocolWrapper::connection_lost(reason);
    char detail[64];
    std::snprintf(detail, sizeof detail, "no whole line within %g s", policy_.seconds_);
    ProtocolWrapper::connection_lost(Reason(error::timed_out, {}, detail));
  }

 private:
  void start_countdown(double seconds) {
    timer_.cancel();
    if (reading_paused_) {
      suspended_ = seconds;
      return;
    }
    suspended_.reset();
    timer_ = policy_.scheduler_.call_later(seconds, [this] { expire(); });
  }
  void stop_countdown() {
    timer_.cancel();
    suspended_.reset();
  }
  void expire() {
    expired_ = true;
    ++policy_.expired_;
    if (has_transport()) transport().abort_connection();
  }

  LineDeadlineFactory& policy_;
  DelayedCall timer_;
  std::optional<double> suspended_;  // time left, while reading is paused
  std::string carry_;
  bool pending_ = false;
  bool reading_paused_ = false;
  bool expired_ = false;
};

LineDeadlineFactory::LineDeadlineFactory(Factory& wrapped, Scheduler& scheduler, double seconds,
                                         std::string delimiter)
    : WrappingFactory(wrapped),
      scheduler_(scheduler),
      seconds_(seconds),
      delimiter_(std::move(delimiter)) {
  check_period(seconds, "LineDeadlineFactory");
  if (delimiter_.empty())
    throw std::invalid_argument("LineDeadlineFactory: the delimiter must not be empty");
}

std::unique_ptr<ProtocolWrapper> LineDeadlineFactory::wrap(std::unique_ptr<Protocol> inner,
                                                           const Address& peer) {
  return std::make_unique<LineDeadlineProtocol>(*this, std::move(inner), peer);
}

}  // namespace torsion
