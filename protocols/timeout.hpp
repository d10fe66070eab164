#pragma once
/// \file
/// TimeoutMixin (close a connection that stays idle) and TimeoutFactory (the same for
/// any protocol, by wrapping it).

#include <optional>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "protocols/wrapping.hpp"

namespace torsion {

/// Add to a protocol to time out its connection (Twisted's TimeoutMixin):
///
///     class Session : public LineReceiver, public TimeoutMixin {
///      public:
///       explicit Session(Scheduler& s) : TimeoutMixin(s, *this) {}
///       void connection_made() override { set_timeout(30); }
///       void line_received(std::string_view) override { reset_timeout(); ... }
///       void connection_lost(const Reason&) override { set_timeout(std::nullopt); }
///     };
///
/// Timers run on the Scheduler given (the Reactor, or a ManualClock in tests). Destroying
/// the object cancels its timer. Reactor thread only.
class TimeoutMixin {
 public:
  /// `protocol` is the protocol whose connection timeout_connection closes by default.
  TimeoutMixin(Scheduler& scheduler, Protocol& protocol);
  virtual ~TimeoutMixin();
  TimeoutMixin(const TimeoutMixin&) = delete;
  TimeoutMixin& operator=(const TimeoutMixin&) = delete;

  /// Starts (or restarts) the countdown: timeout_connection() runs after `seconds`
  /// without reset_timeout(). std::nullopt cancels it. Returns the previous period.
  /// Throws std::invalid_argument for a negative or NaN period, naming it.
  std::optional<double> set_timeout(std::optional<double> seconds);
  /// Restarts the countdown from now, if one is set; call it on activity. Cheap.
  void reset_timeout();
  /// The period in force, or nothing.
  std::optional<double> timeout_period() const noexcept { return period_; }

 protected:
  /// The period passed without activity. The default aborts the connection
  /// (abort_connection, as Twisted: a peer that does not read cannot hold it open).
  /// The countdown is off when this runs; set_timeout again to re-arm it.
  virtual void timeout_connection();

 private:
  Scheduler& scheduler_;
  Protocol& protocol_;
  std::optional<double> period_;
  DelayedCall call_;
};

/// Wraps every protocol of `wrapped` so that its connection is aborted after `seconds`
/// without data received or written (Twisted's policies.TimeoutFactory). The wrapped
/// protocol hears connection_lost with error::connection_aborted.
class TimeoutFactory : public WrappingFactory {
 public:
  /// Throws std::invalid_argument for a negative or NaN period.
  TimeoutFactory(Factory& wrapped, Scheduler& scheduler, double seconds);

 protected:
  /// Wraps in the time-out wrapper.
  std::unique_ptr<ProtocolWrapper> wrap(std::unique_ptr<Protocol> inner,
                                        const Address& peer) override;

 private:
  Scheduler& scheduler_;
  double seconds_;
};

}  // namespace torsion
