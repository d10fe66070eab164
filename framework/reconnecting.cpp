#include "framework/reconnecting.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "framework/log.hpp"

namespace torsion {
namespace {

void check(bool ok, const char* who, const char* field, double value, const char* rule) {
  if (!ok)
    throw std::invalid_argument(std::string(who) + ": Backoff::" + field + " must be " + rule +
                                ", got " + std::to_string(value));
}

}  // namespace

BackoffDelays::BackoffDelays(Backoff backoff, const char* who)
    : backoff_(backoff), random_(std::random_device{}()) {
  const Backoff& b = backoff_;
  check(std::isfinite(b.initial_delay) && b.initial_delay > 0, who, "initial_delay",
        b.initial_delay, "> 0");
  check(std::isfinite(b.factor) && b.factor >= 1, who, "factor", b.factor, ">= 1");
  check(std::isfinite(b.max_delay) && b.max_delay >= b.initial_delay, who, "max_delay",
        b.max_delay, ">= initial_delay");
  check(b.jitter >= 0 && b.jitter < 1, who, "jitter", b.jitter, "in [0, 1)");
  check(b.max_retries >= -1, who, "max_retries", b.max_retries, ">= -1");
}

double BackoffDelays::next() {
  if (backoff_.max_retries >= 0 && retries_ >= backoff_.max_retries) return -1;
  ++retries_;
  base_ = retries_ == 1 ? backoff_.initial_delay
                        : std::min(base_ * backoff_.factor, backoff_.max_delay);
  double delay = base_;
  if (backoff_.jitter > 0) {
    std::uniform_real_distribution<double> spread(1 - backoff_.jitter, 1 + backoff_.jitter);
    delay = std::min(delay * spread(random_), backoff_.max_delay);
  }
  last_ = delay;
  return delay;
}

void BackoffDelays::reset() noexcept {
  retries_ = 0;
  base_ = 0;
}

ReconnectingClientFactory::ReconnectingClientFactory(Scheduler& scheduler, Builder builder,
                                                     Backoff backoff)
    : scheduler_(scheduler), builder_(std::move(builder)),
      delays_(backoff, "ReconnectingClientFactory") {
  if (!builder_) throw std::invalid_argument("ReconnectingClientFactory: empty builder");
}

ReconnectingClientFactory::~ReconnectingClientFactory() { retry_call_.cancel(); }

std::unique_ptr<Protocol> ReconnectingClientFactory::build_protocol(const Address& peer) {
  auto protocol = builder_(peer);
  if (protocol) {
    connecting_ = false;
    reset_delay();
  }
  return protocol;
}

void ReconnectingClientFactory::started_connecting(Connector& connector) {
  connector_ = &connector;
  connecting_ = true;
}

void ReconnectingClientFactory::client_connection_failed(Connector& connector,
                                                         const Reason& reason) {
  connecting_ = false;
  retry(connector, reason);
}

void ReconnectingClientFactory::client_connection_lost(Connector& connector,
                                                       const Reason& reason) {
  retry(connector, reason);
}

void ReconnectingClientFactory::retry(Connector& connector, const Reason& reason) {
  if (!trying_) return;
  connector_ = &connector;
  const double delay = delays_.next();
  if (delay < 0) {
    trying_ = false;
    gave_up(connector, reason);
    return;
  }
  retry_call_.cancel();
  // The pending retry keeps the connector alive: the caller may have dropped the handle
  // connect_tcp returned. The scheduler owns the call, so the connector never outlives
  // the reactor. A connector not owned by a shared_ptr (a test's fake) is used as is.
  std::shared_ptr<Connector> keep = connector.weak_from_this().lock();
  Connector* target = &connector;
  retry_call_ = scheduler_.call_later(delay, [keep = std::move(keep), target] { target->connect(); });
}

void ReconnectingClientFactory::stop_trying() {
  trying_ = false;
  retry_call_.cancel();
  if (connecting_ && connector_) {
    connecting_ = false;
    connector_->disconnect();
  }
}

void ReconnectingClientFactory::resume_trying() {
  trying_ = true;
  reset_delay();
}

void ReconnectingClientFactory::reset_delay() { delays_.reset(); }

void ReconnectingClientFactory::gave_up(Connector& connector, const Reason& last) {
  log(LogLevel::warning, "giving up connecting to " + connector.get_destination().to_string() +
                             " after " + std::to_string(delays_.retries()) + " retries: " +
                             last.message());
}

}  // namespace torsion
