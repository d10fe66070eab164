#include "protocols/timeout.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace torsion {

namespace {
void check_period(double seconds, const char* who) {
  if (std::isnan(seconds) || seconds < 0)
    throw std::invalid_argument(std::string(who) + ": bad time-out period " +
                                std::to_string(seconds));
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

}  // namespace torsion
