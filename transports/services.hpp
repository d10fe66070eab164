#pragma once
/// \file
/// Services over endpoints (framework/service.hpp has Service and MultiService):
/// ListenService listens while it runs (Twisted's StreamServerEndpointService), and
/// ClientService keeps one connection up, reconnecting with backoff (Twisted's
/// ClientService, the modern replacement for ReconnectingClientFactory).

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"
#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/reconnecting.hpp"
#include "framework/service.hpp"
#include "transports/endpoints.hpp"

namespace torsion {

/// Listens on an endpoint while it runs: start_service listens (a bind failure throws,
/// as ServerEndpoint::listen does), stop_service stops listening (connections already
/// accepted stay up until the reactor's shutdown drains them).
class ListenService : public Service {
 public:
  /// Connections get protocols from `factory`; a factory destroyed first stops the port
  /// (see Factory).
  ListenService(std::unique_ptr<ServerEndpoint> endpoint, Factory& factory);
  /// As above, owning the factory.
  ListenService(std::unique_ptr<ServerEndpoint> endpoint, std::shared_ptr<Factory> factory);
  /// From a description ("tcp:8080:interface=127.0.0.1"); throws EndpointError.
  ListenService(Reactor& reactor, std::string_view description, Factory& factory);
  ~ListenService() override;

  void start_service() override;
  Deferred<void> stop_service() override;

  /// The port while running, else null.
  const std::shared_ptr<ListeningPort>& port() const noexcept { return port_; }

 private:
  std::unique_ptr<ServerEndpoint> endpoint_;
  std::shared_ptr<Factory> owned_;
  Factory& factory_;
  std::shared_ptr<ListeningPort> port_;
};

/// Options for ClientService.
struct ClientServiceOptions {
  /// How long to wait between attempts (after a failure, or after a connection is lost).
  /// A successful connection resets it. max_retries gives up (the service stays running,
  /// with nothing pending; when_connected fails with ConnectionError).
  Backoff backoff;
  /// The clock of the retry timer: null for the reactor (a ManualClock in tests).
  Scheduler* clock = nullptr;
};

/// Keeps a connection to an endpoint up while it runs (Twisted's ClientService):
/// start_service connects; whenever the attempt fails or the connection is lost, it
/// connects again after the backoff delay; stop_service cancels a pending retry or
/// attempt and closes the connection. Protocols come from `factory` (its build_protocol
/// only: the ClientFactory events belong to the service). Reactor thread only.
class ClientService : public Service {
 public:
  /// `factory` destroyed first closes the connection and the service stops connecting.
  /// Throws std::invalid_argument for a bad Backoff field.
  ClientService(Reactor& reactor, std::unique_ptr<ClientEndpoint> endpoint, Factory& factory,
                ClientServiceOptions options = {});
  /// From a description ("tcp:127.0.0.1:6379", "unix:@app"...); throws EndpointError.
  ClientService(Reactor& reactor, std::string_view description, Factory& factory,
                ClientServiceOptions options = {});
  /// Stops connecting and closes the connection (without waiting).
  ~ClientService() override;

  void start_service() override;
  /// Cancels a pending retry and an attempt in progress, fails every when_connected()
  /// Deferred with CancelledError, and closes the connection; fires once it is closed.
  Deferred<void> stop_service() override;

  /// Fires with the protocol of the current connection (from the loop), or of the next
  /// one once connection_made has run. Fails with CancelledError if the service stops
  /// first (or with ConnectionError if it gives up, Backoff::max_retries). The protocol is
  /// valid until its connection_lost returns. Cancelling it only forgets this request.
  [[nodiscard]] Deferred<Protocol*> when_connected();

  /// The current connection's protocol (between connection_made and connection_lost),
  /// or null.
  Protocol* current() const noexcept;
  /// Retries scheduled since the last successful connection.
  int retries() const noexcept { return delays_.retries(); }
  /// The pending retry, if any.
  const ScopedDelayedCall& pending_retry() const noexcept { return retry_; }
  /// Reseeds the backoff's jitter (for reproducible tests).
  void seed(std::uint32_t value) { delays_.seed(value); }

 private:
  class Link;
  void connect_now();
  void attempt_ended(const Reason& reason, bool was_connected);
  void fire_waiters();
  void fail_waiters(const std::exception_ptr& error);

  Reactor& reactor_;
  std::unique_ptr<ClientEndpoint> endpoint_;
  Factory& factory_;
  std::weak_ptr<const void> factory_alive_;
  Scheduler& clock_;
  BackoffDelays delays_;
  std::unique_ptr<Link> link_;
  std::shared_ptr<Connector> connector_;
  ScopedDelayedCall retry_;
  Protocol* current_ = nullptr;
  bool connecting_ = false;
  std::vector<Deferred<Protocol*>> waiters_;
  std::vector<Deferred<void>> stopping_;  // stop_service Deferreds waiting for the loss
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for calls queued on the loop
};

}  // namespace torsion
