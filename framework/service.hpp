#pragma once
/// \file
/// The application layer (Twisted's twisted.application.service): long-lived parts of a
/// program (a listening port, a client that stays connected, a periodic job) as Services
/// that start and stop together, in order, and stop before the reactor drains its
/// connections on shutdown. transports/services.hpp has the services over endpoints
/// (ListenService, ClientService).
///
///     auto app = std::make_shared<torsion::MultiService>();
///     app->add_service(std::make_shared<torsion::ListenService>(...));
///     app->add_service(std::make_shared<torsion::ClientService>(...));
///     torsion::start_application(reactor, app);   // starts now, stops on SIGTERM
///     reactor.run();

#include <concepts>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"
#include "framework/looping_call.hpp"
#include "framework/reactor.hpp"

namespace torsion {

class MultiService;

/// Something that starts and stops (Twisted's Service). Subclasses override
/// start_service and stop_service and call the base versions, which keep running().
/// Not copyable; reactor thread only.
class Service {
 public:
  Service() = default;
  virtual ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Starts: running() becomes true.
  virtual void start_service();
  /// Stops: running() becomes false. Returns a Deferred that fires once it has stopped
  /// (already fired by default; a service with connections to close fires it later).
  virtual Deferred<void> stop_service();

  /// True between start_service and stop_service.
  bool running() const noexcept { return running_; }
  /// The name given by set_name ("" by default), for MultiService::get_service.
  const std::string& name() const noexcept { return name_; }
  /// Names it. Throws std::logic_error once it has a parent.
  void set_name(std::string name);
  /// The MultiService it belongs to, or null.
  MultiService* parent() const noexcept { return parent_; }

 private:
  friend class MultiService;
  bool running_ = false;
  std::string name_;
  MultiService* parent_ = nullptr;
};

/// A Service made of services (Twisted's MultiService): starts them in the order they
/// were added and stops them in reverse order, its stop Deferred firing once every one
/// has stopped (failing with the first error, in stop order, after all have finished).
/// It owns them.
class MultiService : public Service {
 public:
  ~MultiService() override;

  /// Adds `service` (owned from now on) and starts it if this one is running. Returns it.
  /// Throws std::invalid_argument for a null service, one that already has a parent, or
  /// a name already used here.
  template <class S>
  requires std::derived_from<S, Service> S& add_service(std::shared_ptr<S> service) {
    S& s = *service;
    add(std::shared_ptr<Service>(std::move(service)));
    return s;
  }
  /// Removes `service` and returns what stopping it returns (if it was running), else a
  /// fired Deferred. Throws std::invalid_argument if it is not one of these services.
  Deferred<void> remove_service(Service& service);
  /// The service named `name`, or null.
  Service* get_service(std::string_view name) const noexcept;
  /// The services, in start order.
  const std::vector<std::shared_ptr<Service>>& services() const noexcept { return services_; }

  /// Starts every service, in order. If one throws, those already started are stopped
  /// (in reverse order) and the exception propagates, leaving this one stopped.
  void start_service() override;
  /// Stops every running service, last added first.
  Deferred<void> stop_service() override;

 private:
  void add(std::shared_ptr<Service> service);
  std::vector<std::shared_ptr<Service>> services_;
};

/// Calls a function every `interval` seconds while running (Twisted's TimerService), the
/// first time when it starts. The function may return void, or a Deferred<void> or
/// Task<void> to wait for before the next call (see LoopingCall). An exception (or a
/// failed Deferred) is logged and the calls stop; stop_service fires once a call being
/// waited for is done.
class TimerService : public Service {
 public:
  /// `scheduler` (a Reactor, or a ManualClock in tests) must outlive this service.
  /// Throws std::invalid_argument for an interval that is not positive and finite.
  template <class F>
  TimerService(Scheduler& scheduler, double interval, F fn)
      : interval_(interval), call_(std::make_unique<LoopingCall>(scheduler, std::move(fn))) {
    check_interval();
  }
  ~TimerService() override;

  void start_service() override;
  Deferred<void> stop_service() override;

 private:
  void check_interval() const;
  double interval_;
  std::unique_ptr<LoopingCall> call_;
  Deferred<void> stopped_ = succeed();  // fires when the current run's loop has ended
};

/// Starts `service` now and has the reactor stop it at the beginning of every shutdown
/// (SIGINT, SIGTERM or Reactor::shutdown()), in the `before` phase: services stop (and
/// the shutdown waits for their stop Deferreds) before listening ports close and
/// connections are drained (what twistd does with an application). The reactor keeps
/// `service` alive until it is destroyed. What start_service throws propagates (nothing
/// is registered then).
void start_application(Reactor& reactor, std::shared_ptr<Service> service);

}  // namespace torsion
