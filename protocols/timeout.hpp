#pragma once
/// \file
/// TimeoutMixin (close a connection that stays idle), TimeoutFactory (the same for any
/// protocol, by wrapping it) and LineDeadlineFactory (close a connection whose peer is too
/// slow to finish a line: the defence against slowloris).

#include <cstddef>
#include <optional>
#include <string>

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
/// What counts as activity is where the protocol calls reset_timeout(): calling it only
/// in data_received (or line_received) drops a peer that sends nothing for the period,
/// however much is written to it, which TimeoutFactory does not (it counts writes too).
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
/// in which no data was received and the wrapped protocol made no write (Twisted's
/// policies.TimeoutFactory). The wrapped protocol hears connection_lost with
/// error::connection_aborted.
///
/// A write counts when it is made (write, write_sequence), as in Twisted's
/// TimeoutProtocol, whether or not any byte of it reaches the peer: a peer that never
/// reads but is still written to is never timed out, and neither is one that only
/// listens while the protocol keeps sending. Bound a non-reading peer by its write queue
/// (Transport::buffer_size() against the water marks, or a registered producer); to time
/// out on input only, use TimeoutMixin and call reset_timeout() in data_received.
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

class LineDeadlineProtocol;

/// Wraps every protocol of `wrapped` so that its peer must send each whole line within
/// `seconds` of the line's first byte (nginx's client_header_timeout, per line): the
/// countdown starts when a byte arrives with no partial line pending, stops when the
/// line's delimiter arrives, and is NOT extended by further bytes of the same line. When
/// it runs out the connection is aborted and the wrapped protocol hears
/// connection_lost(error::timed_out) (the peer sees a reset).
///
/// Why not an idle time-out: TimeoutFactory restarts its countdown on every read, so a
/// peer that sends one byte every period minus a little (slowloris) holds the connection
/// for ever. Under this policy such a peer holds it for at most `seconds`, and, with a
/// LineReceiver behind it, costs at most max_length() + delimiter size bytes of buffer.
///
/// Time during which the wrapped protocol has paused reading (pause_producing on its
/// transport, i.e. on this wrapper, as LineReceiver::pause_producing does) does not count:
/// the peer cannot send then. Pauses made on the real transport by someone else do count.
///
/// What it does not cover, so compose it: a peer that sends nothing (or stops between
/// lines) is idle, not slow — wrap this factory in a TimeoutFactory; a peer that sends
/// whole lines slowly is making progress — the application's own limits apply; many
/// slow peers at once — ConnectionLimitFactory / PeerConnectionLimitFactory bound how
/// many can be pending. There is no Apache-style minimum rate extending the deadline:
/// choose `seconds` large enough for the longest legitimate line.
///
/// Lines are found by scanning the received bytes for `delimiter` (non-overlapping,
/// left to right, as LineReceiver splits them; a delimiter split across reads counts),
/// independently of the wrapped protocol: if that protocol switches to a raw mode, its
/// raw bytes count as a pending line. Timers run on the Scheduler given. Reactor thread
/// only.
class LineDeadlineFactory : public WrappingFactory {
 public:
  /// Throws std::invalid_argument for a negative or NaN period or an empty delimiter.
  LineDeadlineFactory(Factory& wrapped, Scheduler& scheduler, double seconds,
                      std::string delimiter = "\r\n");

  /// The time allowed for one line, in seconds.
  double deadline() const noexcept { return seconds_; }
  /// The delimiter that ends a line.
  const std::string& delimiter() const noexcept { return delimiter_; }
  /// How many connections this factory timed out so far.
  std::size_t expired_count() const noexcept { return expired_; }

 protected:
  /// Wraps in the line-deadline wrapper.
  std::unique_ptr<ProtocolWrapper> wrap(std::unique_ptr<Protocol> inner,
                                        const Address& peer) override;

 private:
  friend class LineDeadlineProtocol;
  Scheduler& scheduler_;
  double seconds_;
  std::string delimiter_;
  std::size_t expired_ = 0;
};

}  // namespace torsion
