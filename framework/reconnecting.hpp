#pragma once
/// \file
/// ReconnectingClientFactory: a client factory that connects again, with exponential
/// backoff, whenever a connection attempt fails or an established connection is lost.

#include <cstdint>
#include <functional>
#include <memory>
#include <random>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"

namespace torsion {

/// How long ReconnectingClientFactory waits between attempts. The n-th retry in a row
/// (n = 1, 2, ...) waits min(initial_delay * factor^(n-1), max_delay), multiplied by a
/// random factor drawn uniformly from [1 - jitter, 1 + jitter] and capped at max_delay
/// again. Defaults: 1 s, x2, 10% jitter, at most one hour, retrying forever.
struct Backoff {
  double initial_delay = 1.0;  ///< seconds before the first retry, > 0
  double factor = 2.0;         ///< growth per retry, >= 1
  double max_delay = 3600.0;   ///< cap in seconds, >= initial_delay
  double jitter = 0.1;         ///< relative spread, in [0, 1)
  int max_retries = -1;        ///< give up after this many retries in a row; -1: never
};

/// The delays of a Backoff, retry after retry: what ReconnectingClientFactory and
/// ClientService wait between attempts.
class BackoffDelays {
 public:
  /// Throws std::invalid_argument for a bad Backoff field, naming `who` and the field.
  BackoffDelays(Backoff backoff, const char* who);
  /// The delay before the next retry (and counts it), or a negative value when
  /// max_retries retries in a row are used up.
  double next();
  /// Back to the start: the next retry waits initial_delay.
  void reset() noexcept;
  /// Retries counted since the last reset.
  int retries() const noexcept { return retries_; }
  /// The last delay next() returned; 0 before any.
  double last() const noexcept { return last_; }
  /// The settings.
  const Backoff& backoff() const noexcept { return backoff_; }
  /// Reseeds the jitter's random generator (for reproducible tests).
  void seed(std::uint32_t value) { random_.seed(value); }

 private:
  Backoff backoff_;
  std::mt19937 random_;
  int retries_ = 0;
  double base_ = 0;
  double last_ = 0;
};

/// A ClientFactory (build protocols with `builder`) that reconnects through the
/// Connector it is used with: after client_connection_failed or client_connection_lost
/// it schedules connector.connect() on `scheduler` after the backoff delay. A successful
/// connection (build_protocol returning a protocol) resets the delay and the retry count.
/// After max_retries failed retries in a row it gives up (trying() becomes false and
/// gave_up() is called). stop_trying() cancels a pending retry, stops an attempt in
/// progress and prevents further ones; it does not close an established connection (call
/// the Connector's disconnect() or the transport's lose_connection() after it).
///
/// Differences from Twisted's ReconnectingClientFactory: the delay is reset
/// automatically on a successful connection (Twisted needs resetDelay() from the
/// protocol); the first retry waits initial_delay (Twisted multiplies first); jitter is
/// uniform and bounded instead of normally distributed, so a delay never exceeds
/// max_delay; the default factor is 2 instead of e.
///
/// Subclasses overriding the ClientFactory events must call the base version to keep
/// reconnecting. The factory must outlive the Connector's connections (as every client
/// factory). The handle connect_tcp returns is optional: a pending retry keeps the
/// Connector alive (on the scheduler, so never past the reactor). Destroying the factory
/// cancels a pending retry.
/// Reactor (scheduler) thread only.
class ReconnectingClientFactory : public ClientFactory {
 public:
  /// Makes the protocol for each (re)connection; may return null to refuse it.
  using Builder = std::function<std::unique_ptr<Protocol>(const Address&)>;

  /// Throws std::invalid_argument for a bad Backoff field (naming it) or an empty builder.
  ReconnectingClientFactory(Scheduler& scheduler, Builder builder, Backoff backoff = {});
  ~ReconnectingClientFactory() override;

  /// Builds with the builder; a protocol (not null) means the connection succeeded, and
  /// resets the backoff.
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;
  /// Remembers the connector, so that stop_trying() can stop the attempt.
  void started_connecting(Connector& connector) override;
  /// Schedules a retry (unless stopped or out of retries).
  void client_connection_failed(Connector& connector, const Reason& reason) override;
  /// Schedules a retry (unless stopped).
  void client_connection_lost(Connector& connector, const Reason& reason) override;

  /// Stops reconnecting: cancels a pending retry and disconnect()s an attempt in
  /// progress. Idempotent.
  void stop_trying();
  /// Reconnects again after stop_trying() or after giving up: resets the backoff and
  /// retries from the next failure or loss (it does not connect by itself; call the
  /// Connector's connect()).
  void resume_trying();
  /// Puts the backoff back to its start: the next retry waits initial_delay.
  void reset_delay();

  /// False after stop_trying() or after giving up.
  bool trying() const noexcept { return trying_; }
  /// Retries scheduled since the last success or reset.
  int retries() const noexcept { return delays_.retries(); }
  /// The delay (seconds) of the last retry scheduled; 0 before any.
  double last_delay() const noexcept { return delays_.last(); }
  /// The pending retry, if any (inactive otherwise).
  const DelayedCall& pending_retry() const noexcept { return retry_call_; }
  /// Reseeds the jitter's random generator (for reproducible tests).
  void seed(std::uint32_t value) { delays_.seed(value); }

 protected:
  /// Called once when max_retries is reached, with the last failure. Logs by default.
  virtual void gave_up(Connector& connector, const Reason& last);

 private:
  void retry(Connector& connector, const Reason& reason);

  Scheduler& scheduler_;
  Builder builder_;
  BackoffDelays delays_;
  Connector* connector_ = nullptr;
  DelayedCall retry_call_;
  bool trying_ = true;
  bool connecting_ = false;
};

}  // namespace torsion
