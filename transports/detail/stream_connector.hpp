#pragma once
// Private: the one client connector behind connect_tcp, connect_unix and connect_ssl.
// They differ in where they connect to (a host resolved at each attempt unless it is
// numeric, for TCP; a fixed endpoint for Unix) and in what becomes of a connected socket
// (established(): a StreamEngine at once, or a TLS handshake first; either way it ends
// in attach() or fail()). What they share:
//
//   connect() --posted--> started_connecting --> [resolve] --> race the endpoints (Happy
//   Eyeballs) --> established() --> build_protocol --> transport started: connected
//                 \--> client_connection_failed, with the last failure; idle again
//
//   - Happy Eyeballs (RFC 8305 section 5): the endpoints are ordered IPv6 first, the
//     families interleaved; one connect starts, and the next starts when it fails or after
//     attempt_delay seconds, whichever comes first, so several may be in flight. The first
//     to connect wins; the others are closed at once. The attempt fails with the last
//     failure when every endpoint has failed;
//   - an attempt_timeout (0: none) gives up one endpoint (timed_out) and starts the next;
//   - every handler belongs to one attempt (attempt_); fail() and disconnect() make the
//     attempt's handlers stale at once, so connect() may start another right away;
//   - a timeout (0: none) covers everything up to attach(), a TLS handshake included;
//   - the timers run on timing.clock (a ManualClock in tests), the sockets on the reactor;
//   - an exception from started_connecting or build_protocol fails the attempt with
//     error::callback_threw; null from build_protocol with error::refused_by_factory;
//     one from client_connection_failed is logged.

#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/detail/io_close.hpp"
#include "transports/detail/stream_common.hpp"

namespace torsion::detail {

// How a connector paces its attempts, and (TCP) where from and to which family (see
// TcpConnectOptions, where they are documented).
struct ConnectTiming {
  double timeout = 30;          // the whole attempt; 0: none
  double attempt_delay = 0.25;  // Happy Eyeballs stagger
  double attempt_timeout = 0;   // one endpoint; 0: none
  Scheduler* clock = nullptr;   // timers; null: the reactor
  // Replaces the system resolver (TCP): a name's numeric addresses.
  std::function<std::vector<std::string>(const std::string&)> resolver;
  // TCP: the numeric local address each socket binds before connecting (none: no bind),
  // and the only family connected to (none: any; else also bind's family).
  Address bind;
  Address::Family family = Address::Family::none;

  // The defaults, with an overall `seconds`.
  static ConnectTiming within(double seconds) {
    ConnectTiming timing;
    timing.timeout = seconds;
    return timing;
  }
};

template <class Proto>
class StreamConnector : public Connector {
 public:
  using Socket = typename Proto::socket;
  using Endpoint = typename Proto::endpoint;

  Address get_destination() const override { return destination_; }

  void connect() override {
    if (state_ != State::idle) return;
    state_ = State::connecting;
    const auto attempt = ++attempt_;
    asio::post(reactor_.context(),
               [self = self_ptr(), attempt] { self->begin(attempt); });
  }

  void disconnect() override {
    if (state_ == State::connecting) {
      // Give the attempt up now, so that connect() may start another at once; the factory
      // hears about it from the loop.
      abandon();
      asio::post(reactor_.context(), [self = self_ptr()] {
        self->report_failure(Reason(error::cancelled, {}, "disconnect() while connecting"));
      });
    } else if (state_ == State::connected) {
      if (auto t = transport_.lock()) t->lose_connection();
    }
  }

 protected:
  // TCP: connects to `destination`'s host (a name or a numeric address) and port.
  // Unix: to `endpoint`, always.
  StreamConnector(Reactor& reactor, ClientFactory& factory, Address destination,
                  ConnectTiming timing, Endpoint endpoint = {})
      : reactor_(reactor), factory_(factory), destination_(std::move(destination)),
        timing_(std::move(timing)), clock_(timing_.clock ? *timing_.clock : reactor),
        resolver_(reactor.context()), endpoints_{endpoint} {}

  // The attempt's socket connected to `ep`: set a transport up on it, then attach() it
  // (or fail(), or leave the attempt pending while the set-up runs: see pending_).
  virtual void established(std::uint64_t attempt, Socket socket, const Endpoint& ep) = 0;

  // Gives `transport` (set up, not started) the factory's protocol and starts it: the
  // attempt succeeded. If the factory refuses or throws, the attempt fails instead.
  template <class T>
  void attach(const std::shared_ptr<T>& transport) {
    timeout_.cancel();
    std::unique_ptr<Protocol> protocol;
    Factory* factory = factory_.get();
    if (!factory) {
      abandon();  // the factory is gone: nobody to tell, and `transport` closes unstarted
      return;
    }
    try {
      protocol = factory->build_tracked(transport->get_peer());
    } catch (...) {
      log_exception("build_protocol (the attempt fails)");
      fail(Reason(error::callback_threw, {}, "build_protocol", std::current_exception()));
      return;
    }
    if (!protocol) {
      fail(Reason(error::refused_by_factory));
      return;
    }
    state_ = State::connected;
    pending_.reset();
    transport_ = transport;
    transport->start(std::move(protocol),
                     [self = self_ptr()](const Reason& reason) {
                       self->state_ = State::idle;
                       if (ClientFactory* f = self->client_factory())
                         f->client_connection_lost(*self, reason);
                       self->maybe_stop_factory();
                     });
  }

  // This connector, shared: every pending operation holds one, so dropping the handle
  // connect_tcp returned never frees a connector in use.
  std::shared_ptr<StreamConnector> self_ptr() {
    return std::static_pointer_cast<StreamConnector>(this->shared_from_this());
  }

  // True while `attempt` is the attempt in progress.
  bool current(std::uint64_t attempt) const {
    return attempt == attempt_ && state_ == State::connecting;
  }

  void fail(const Reason& reason) {
    abandon();
    report_failure(reason);
  }

  Reactor& reactor_;
  // A transport still being set up by established() (a TLS handshake): aborted if the
  // attempt fails, released by attach().
  std::shared_ptr<Transport> pending_;

 private:
  enum class State { idle, connecting, connected };
  static constexpr bool kResolves = std::is_same_v<Proto, asio::ip::tcp>;
  struct NoResolver {
    explicit NoResolver(asio::io_context&) {}
    void cancel() {}
  };

  // The factory, or null once it is destroyed.
  ClientFactory* client_factory() const noexcept {
    return static_cast<ClientFactory*>(factory_.get());
  }

  // After a failure or a loss: unless the callback started another attempt, this
  // connector no longer uses the factory (Twisted's doStop).
  void maybe_stop_factory() {
    if (state_ != State::idle || !factory_started_) return;
    factory_started_ = false;
    if (Factory* f = factory_.get()) f->do_stop();
  }

  void begin(std::uint64_t attempt) {
    if (!current(attempt)) return;
    ClientFactory* factory = client_factory();
    if (!factory) {
      abandon();  // the factory is gone: the connector stops
      return;
    }
    if (!factory_started_) {
      factory_started_ = true;
      factory->do_start();
    }
    try {
      factory->started_connecting(*this);
    } catch (...) {
      log_exception("started_connecting (the attempt fails)");
      if (current(attempt))
        fail(Reason(error::callback_threw, {}, "started_connecting", std::current_exception()));
      return;
    }
    if (!current(attempt)) return;
    if (timing_.timeout > 0) {
      std::weak_ptr<StreamConnector> weak = self_ptr();
      timeout_ = clock_.call_later(timing_.timeout, [weak, attempt] {
        auto self = weak.lock();
        if (!self || !self->current(attempt)) return;
        self->fail(Reason(error::timed_out, {},
                          "connecting to " + self->destination_.to_string() + " took over " +
                              std::to_string(self->timing_.timeout) + " s"));
      });
    }
    if constexpr (kResolves) {
      std::error_code ec;
      const auto address = asio::ip::make_address(destination_.host(), ec);
      if (!ec) {
        endpoints_ = {Endpoint(address, destination_.port())};
      } else if (timing_.resolver) {
        if (!resolve_with_hook()) {
          fail(Reason(error::lookup_failed, {}, destination_.host()));
          return;
        }
      } else {
        resolve(attempt);
        return;
      }
    }
    race(attempt);
  }

  // The endpoints from timing_.resolver; false when it gave no numeric address (or threw).
  bool resolve_with_hook() {
    std::vector<std::string> found;
    try {
      found = timing_.resolver(destination_.host());
    } catch (...) {
      log_exception("the connector's resolver");
      return false;
    }
    endpoints_.clear();
    for (const auto& text : found) {
      std::error_code ec;
      const auto address = asio::ip::make_address(text, ec);
      if (!ec) endpoints_.emplace_back(address, destination_.port());
    }
    return !endpoints_.empty();
  }

  void resolve(std::uint64_t attempt) {
    resolver_.async_resolve(
        destination_.host(), std::to_string(destination_.port()),
        [self = self_ptr(), attempt](const std::error_code& ec,
                                                   typename Proto::resolver::results_type r) {
          if (!self->current(attempt)) return;
          if (ec || r.empty()) {
            self->fail(Reason(error::lookup_failed, ec, self->destination_.host()));
            return;
          }
          self->endpoints_.clear();
          for (const auto& entry : r) self->endpoints_.push_back(entry.endpoint());
          self->race(attempt);
        });
  }

  // One endpoint's connect in flight.
  struct Racer {
    explicit Racer(asio::io_context& io) : socket(io) {}
    Socket socket;
    DelayedCall deadline;     // attempt_timeout
    bool connecting = false;  // its connect is queued (io_close.hpp: close after cancel)
  };

  // Orders endpoints_ as RFC 8305 section 4 asks (IPv6 first, then the families in
  // turn, each in the resolver's order) and starts the first connect.
  void race(std::uint64_t attempt) {
    if constexpr (kResolves) {
      if (timing_.family != Address::Family::none) {
        const bool v6_wanted = timing_.family == Address::Family::ipv6;
        std::erase_if(endpoints_, [&](const Endpoint& ep) { return ep.address().is_v6() != v6_wanted; });
        if (endpoints_.empty()) {
          fail(Reason(error::lookup_failed, {},
                      std::string("no IPv") + (v6_wanted ? "6" : "4") + " address for " +
                          destination_.host()));
          return;
        }
      }
      std::vector<Endpoint> v6, v4;
      for (const auto& ep : endpoints_) (ep.address().is_v6() ? v6 : v4).push_back(ep);
      endpoints_.clear();
      for (std::size_t i = 0; i < v6.size() || i < v4.size(); ++i) {
        if (i < v6.size()) endpoints_.push_back(v6[i]);
        if (i < v4.size()) endpoints_.push_back(v4[i]);
      }
    }
    next_ = 0;
    start_next(attempt);
  }

  // Starts a connect to the next endpoint, and the stagger timer for the one after it.
  void start_next(std::uint64_t attempt) {
    stagger_.cancel();
    if (next_ >= endpoints_.size()) {
      if (racers_.empty()) fail(last_failure_);
      return;
    }
    const Endpoint ep = endpoints_[next_++];
    auto racer = std::make_shared<Racer>(reactor_.context());
    racers_.push_back(racer);
    std::weak_ptr<StreamConnector> weak = self_ptr();
    if (timing_.attempt_timeout > 0)
      racer->deadline = clock_.call_later(timing_.attempt_timeout, [weak, attempt, ep,
                                                                    one = std::weak_ptr(racer)] {
        auto self = weak.lock();
        auto late = one.lock();
        if (!self || !late || !self->current(attempt) || !self->racing(*late)) return;
        self->lost(attempt, *late,
                   Reason(error::timed_out, {},
                          "connecting to " + to_address(ep).to_string() + " took over " +
                              std::to_string(self->timing_.attempt_timeout) + " s"));
      });
    if (next_ < endpoints_.size())
      stagger_ = clock_.call_later(timing_.attempt_delay, [weak, attempt] {
        auto self = weak.lock();
        if (self && self->current(attempt)) self->start_next(attempt);
      });
    if constexpr (kResolves) {
      if (timing_.bind.family() != Address::Family::none) {
        std::error_code ec;
        racer->socket.open(ep.protocol(), ec);
        if (!ec)
          racer->socket.bind(Endpoint(asio::ip::make_address(timing_.bind.host()), timing_.bind.port()),
                             ec);
        if (ec) {  // this address fails as a refused connect would; the next one starts
          lost(attempt, *racer, Reason::from_os_error(ec, "binding " + timing_.bind.to_string()));
          return;
        }
      }
    }
    racer->connecting = true;
    racer->socket.async_connect(
        ep, [self = self_ptr(), attempt, racer, ep](const std::error_code& ec) {
          racer->connecting = false;
          if (!self->current(attempt) || !self->racing(*racer)) {
            close_or_cancel(racer->socket, false);  // it may only have been cancelled
            return;
          }
          if (ec) {
            const std::string where = to_address(ep).to_string();
            Reason reason = Reason::from_os_error(ec, where);
            if (reason.is(error::connection_lost)) reason = Reason(error::connect_failed, ec, where);
            self->lost(attempt, *racer, std::move(reason));
            return;
          }
          // The winner: the others are closed now, before the transport is set up.
          Socket won = std::move(racer->socket);
          self->stop_racing();
          self->established(attempt, std::move(won), ep);
        });
  }

  bool racing(const Racer& racer) const {
    for (const auto& r : racers_)
      if (r.get() == &racer) return true;
    return false;
  }

  // `racer` failed: forget it and start the next endpoint now (or fail if none is left).
  void lost(std::uint64_t attempt, Racer& racer, Reason reason) {
    last_failure_ = std::move(reason);
    racer.deadline.cancel();
    close_or_cancel(racer.socket, racer.connecting);
    std::erase_if(racers_, [&](const auto& r) { return r.get() == &racer; });
    start_next(attempt);
  }

  // Closes every connect in flight and the stagger timer.
  void stop_racing() {
    stagger_.cancel();
    for (auto& r : racers_) {
      r->deadline.cancel();
      close_or_cancel(r->socket, r->connecting);
    }
    racers_.clear();
  }

  // Makes every handler of the current attempt stale and releases its resources.
  void abandon() {
    ++attempt_;
    state_ = State::idle;
    timeout_.cancel();
    resolver_.cancel();
    stop_racing();
    if (auto t = std::move(pending_)) t->abort_connection();
  }

  void report_failure(const Reason& reason) {
    if (ClientFactory* factory = client_factory()) {
      try {
        factory->client_connection_failed(*this, reason);
      } catch (...) {
        log_exception("client_connection_failed");
      }
    }
    maybe_stop_factory();
  }

  FactoryRef factory_;  // a ClientFactory
  bool factory_started_ = false;
  const Address destination_;
  const ConnectTiming timing_;
  Scheduler& clock_;
  std::conditional_t<kResolves, asio::ip::tcp::resolver, NoResolver> resolver_;
  std::vector<Endpoint> endpoints_;  // TCP: found at each attempt; Unix: the one endpoint
  std::size_t next_ = 0;             // the next endpoint to race
  std::vector<std::shared_ptr<Racer>> racers_;  // connects in flight
  DelayedCall stagger_;                          // starts the next endpoint
  Reason last_failure_{error::connect_failed};
  DelayedCall timeout_;
  std::weak_ptr<Transport> transport_;
  State state_ = State::idle;
  std::uint64_t attempt_ = 0;
};

}  // namespace torsion::detail
