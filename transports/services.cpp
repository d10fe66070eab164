#include "transports/services.hpp"

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "framework/log.hpp"
#include "framework/stream.hpp"

namespace torsion {

// --- ListenService ---------------------------------------------------------------------

ListenService::ListenService(std::unique_ptr<ServerEndpoint> endpoint, Factory& factory)
    : endpoint_(std::move(endpoint)), factory_(factory) {
  if (!endpoint_) throw std::invalid_argument("ListenService: null endpoint");
}

ListenService::ListenService(std::unique_ptr<ServerEndpoint> endpoint,
                             std::shared_ptr<Factory> factory)
    : endpoint_(std::move(endpoint)),
      owned_(std::move(factory)),
      factory_(owned_ ? *owned_ : throw std::invalid_argument("ListenService: null factory")) {
  if (!endpoint_) throw std::invalid_argument("ListenService: null endpoint");
}

ListenService::ListenService(Reactor& reactor, std::string_view description, Factory& factory)
    : ListenService(server_from_string(reactor, description), factory) {}

ListenService::~ListenService() {
  if (port_) port_->stop_listening();
}

void ListenService::start_service() {
  if (running()) return;
  port_ = endpoint_->listen(factory_);  // throws if it cannot bind: stays stopped
  Service::start_service();
}

Deferred<void> ListenService::stop_service() {
  if (auto port = std::move(port_)) port->stop_listening();
  return Service::stop_service();
}

// --- ClientService ---------------------------------------------------------------------

// The service's ClientFactory: builds with the user's factory and tells the service how
// each attempt goes. Destroyed with the service, it closes the connection (see Factory).
class ClientService::Link final : public ClientFactory {
 public:
  explicit Link(ClientService& service) : service_(service) {}

  std::unique_ptr<Protocol> build_protocol(const Address& peer) override {
    ClientService& s = service_;
    if (s.factory_alive_.expired()) return nullptr;
    auto protocol = s.factory_.build_tracked(peer);
    if (!protocol) return nullptr;
    s.connecting_ = false;
    s.current_ = protocol.get();
    s.delays_.reset();
    // From the loop, once connection_made has run.
    s.reactor_.call_soon([alive = std::weak_ptr<int>(s.alive_), &s] {
      if (!alive.expired()) s.fire_waiters();
    });
    return protocol;
  }
  void client_connection_failed(Connector&, const Reason& reason) override {
    service_.attempt_ended(reason, false);
  }
  void client_connection_lost(Connector&, const Reason& reason) override {
    service_.attempt_ended(reason, true);
  }

 private:
  ClientService& service_;
};

ClientService::ClientService(Reactor& reactor, std::unique_ptr<ClientEndpoint> endpoint,
                             Factory& factory, ClientServiceOptions options)
    : reactor_(reactor),
      endpoint_(std::move(endpoint)),
      factory_(factory),
      factory_alive_(factory.alive_token()),
      clock_(options.clock ? *options.clock : static_cast<Scheduler&>(reactor)),
      delays_(options.backoff, "ClientService"),
      link_(std::make_unique<Link>(*this)) {
  if (!endpoint_) throw std::invalid_argument("ClientService: null endpoint");
}

ClientService::ClientService(Reactor& reactor, std::string_view description, Factory& factory,
                             ClientServiceOptions options)
    : ClientService(reactor, client_from_string(reactor, description), factory, options) {}

ClientService::~ClientService() = default;  // link_ goes: the connection closes

Protocol* ClientService::current() const noexcept {
  return factory_alive_.expired() ? nullptr : current_;
}

void ClientService::start_service() {
  if (running()) return;
  Service::start_service();
  delays_.reset();
  connect_now();
}

void ClientService::connect_now() {
  if (!running() || connecting_ || current()) return;
  if (factory_alive_.expired()) {
    log(LogLevel::error,
        "ClientService: its factory was destroyed; not connecting to " + endpoint_->description());
    return;
  }
  connecting_ = true;
  try {
    connector_ = endpoint_->connect(*link_);
  } catch (...) {
    connecting_ = false;
    throw;
  }
}

void ClientService::attempt_ended(const Reason& reason, bool was_connected) {
  connecting_ = false;
  current_ = nullptr;
  if (!running()) {
    for (auto& d : std::exchange(stopping_, {}))
      if (!d.called()) d.callback();
    return;
  }
  const double delay = delays_.next();
  if (delay < 0) {
    log(LogLevel::warning, "ClientService: giving up connecting to " + endpoint_->description() +
                               " after " + std::to_string(delays_.retries()) +
                               " retries: " + reason.message());
    fail_waiters(std::make_exception_ptr(ConnectionError(reason)));
    return;
  }
  if (log_enabled(LogLevel::debug))
    log(LogLevel::debug, std::string("ClientService: ") +
                             (was_connected ? "connection lost" : "attempt failed") + " (" +
                             reason.message() + "); retrying in " + std::to_string(delay) + " s");
  retry_ = clock_.call_later(delay, [this] { connect_now(); });
}

Deferred<void> ClientService::stop_service() {
  auto stopped = Service::stop_service();
  retry_.cancel();
  fail_waiters(std::make_exception_ptr(CancelledError()));
  if (!connecting_ && !current()) return stopped;
  std::move(stopped).add_callback([] {});
  Deferred<void> done;
  stopping_.push_back(done);
  if (connecting_ && connector_)
    connector_->disconnect();  // client_connection_failed (cancelled) follows
  else if (Protocol* p = current())
    p->transport().lose_connection();  // client_connection_lost follows
  return done;
}

Deferred<Protocol*> ClientService::when_connected() {
  Deferred<Protocol*> d;
  waiters_.push_back(d);
  if (current())
    reactor_.call_soon([alive = std::weak_ptr<int>(alive_), this] {
      if (!alive.expired()) fire_waiters();
    });
  return d;
}

void ClientService::fire_waiters() {
  Protocol* p = current();
  if (!p) return;  // lost meanwhile: they wait for the next connection
  for (auto& d : std::exchange(waiters_, {}))
    if (!d.called()) d.callback(p);
}

void ClientService::fail_waiters(const std::exception_ptr& error) {
  for (auto& d : std::exchange(waiters_, {}))
    if (!d.called()) d.errback(error);
}

}  // namespace torsion
