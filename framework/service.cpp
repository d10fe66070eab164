#include "framework/service.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "framework/log.hpp"

namespace torsion {

// --- Service ---------------------------------------------------------------------------

Service::~Service() = default;

void Service::start_service() { running_ = true; }

Deferred<void> Service::stop_service() {
  running_ = false;
  return succeed();
}

void Service::set_name(std::string name) {
  if (parent_) throw std::logic_error("Service::set_name: the service already has a parent");
  name_ = std::move(name);
}

// --- MultiService ----------------------------------------------------------------------

MultiService::~MultiService() {
  for (auto& s : services_) s->parent_ = nullptr;
}

void MultiService::add(std::shared_ptr<Service> service) {
  if (!service) throw std::invalid_argument("MultiService::add_service: null service");
  if (service->parent_)
    throw std::invalid_argument("MultiService::add_service: the service already has a parent");
  if (!service->name().empty() && get_service(service->name()))
    throw std::invalid_argument("MultiService::add_service: a service is already named '" +
                                service->name() + "'");
  service->parent_ = this;
  services_.push_back(service);
  if (running() && !service->running()) service->start_service();
}

Deferred<void> MultiService::remove_service(Service& service) {
  auto it = std::find_if(services_.begin(), services_.end(),
                         [&](const auto& s) { return s.get() == &service; });
  if (it == services_.end())
    throw std::invalid_argument("MultiService::remove_service: not one of its services");
  std::shared_ptr<Service> keep = std::move(*it);  // alive until its stop is under way
  services_.erase(it);
  keep->parent_ = nullptr;
  if (!keep->running()) return succeed();
  return keep->stop_service().add_both([keep](Outcome<void> o) { o.value(); });
}

Service* MultiService::get_service(std::string_view name) const noexcept {
  for (const auto& s : services_)
    if (s->name() == name) return s.get();
  return nullptr;
}

void MultiService::start_service() {
  Service::start_service();
  // A copy: a service's start may add services (they start from add_service).
  const auto services = services_;
  std::size_t started = 0;
  try {
    for (const auto& s : services) {
      if (!s->running()) s->start_service();
      ++started;
    }
  } catch (...) {
    for (std::size_t i = started; i-- > 0;)
      if (services[i]->running()) {
        auto ignored = services[i]->stop_service();
        std::move(ignored).add_errback([](std::exception_ptr e) {
          log(LogLevel::error, "stopping a service after a failed start: " + describe_error(e));
        });
      }
    Service::stop_service().add_callback([] {});
    throw;
  }
}

Deferred<void> MultiService::stop_service() {
  auto done = Service::stop_service();
  std::move(done).add_callback([] {});
  std::vector<Deferred<void>> stops;
  const auto services = services_;
  for (auto it = services.rbegin(); it != services.rend(); ++it) {
    if (!(*it)->running()) continue;
    try {
      // Each service stays alive until its own stop has finished.
      stops.push_back((*it)->stop_service().add_both([keep = *it](Outcome<void> o) { o.value(); }));
    } catch (...) {
      stops.push_back(fail<void>(std::current_exception()));
    }
  }
  return gather(std::move(stops));
}

// --- TimerService ----------------------------------------------------------------------

TimerService::~TimerService() = default;

void TimerService::check_interval() const {
  if (!(std::isfinite(interval_) && interval_ > 0))
    throw std::invalid_argument("TimerService: the interval must be positive and finite, got " +
                                std::to_string(interval_));
}

void TimerService::start_service() {
  if (running()) return;
  Service::start_service();
  Deferred<void> stopped;
  stopped_ = stopped;
  call_->start(interval_, true).add_both([stopped](Outcome<void> o) mutable {
    if (!o.ok()) log(LogLevel::error, "TimerService: the calls stop: " + describe_error(o.error()));
    stopped.callback();
  });
}

Deferred<void> TimerService::stop_service() {
  auto base = Service::stop_service();
  std::move(base).add_callback([] {});
  call_->stop();
  return std::exchange(stopped_, succeed());
}

// --- start_application -----------------------------------------------------------------

void start_application(Reactor& reactor, std::shared_ptr<Service> service) {
  if (!service) throw std::invalid_argument("start_application: null service");
  if (!service->running()) service->start_service();
  reactor.add_shutdown_trigger(ShutdownPhase::before, [service]() -> Deferred<void> {
    if (!service->running()) return succeed();
    return service->stop_service();
  });
}

}  // namespace torsion
