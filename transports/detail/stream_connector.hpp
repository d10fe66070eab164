#pragma once
// Private: the one client connector behind connect_tcp, connect_unix and connect_ssl.
// They differ in where they connect to (a host resolved at each attempt unless it is
// numeric, for TCP; a fixed endpoint for Unix) and in what becomes of a connected socket
// (established(): a StreamEngine at once, or a TLS handshake first; either way it ends
// in attach() or fail()). What they share:
//
//   connect() --posted--> started_connecting --> [resolve] --> connect to each endpoint in
//   turn --> established() --> build_protocol --> transport started: connected
//                 \--> client_connection_failed, with the last failure; idle again
//
//   - every handler belongs to one attempt (attempt_); fail() and disconnect() make the
//     attempt's handlers stale at once, so connect() may start another right away;
//   - a timeout (0: none) covers everything up to attach(), a TLS handshake included;
//   - an exception from started_connecting or build_protocol fails the attempt with
//     error::callback_threw; null from build_protocol with error::refused_by_factory;
//     one from client_connection_failed is logged.

#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/detail/stream_common.hpp"

namespace torsion::detail {

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
  // Unix: to `endpoint`, always. `timeout` in seconds, 0 for none.
  StreamConnector(Reactor& reactor, ClientFactory& factory, Address destination, double timeout,
                  Endpoint endpoint = {})
      : reactor_(reactor), factory_(factory), destination_(std::move(destination)),
        timeout_seconds_(timeout), resolver_(reactor.context()), socket_(reactor.context()),
        endpoints_{endpoint} {}

  // The attempt's socket connected to `ep`: set a transport up on it, then attach() it
  // (or fail(), or leave the attempt pending while the set-up runs: see pending_).
  virtual void established(std::uint64_t attempt, Socket socket, const Endpoint& ep) = 0;

  // Gives `transport` (set up, not started) the factory's protocol and starts it: the
  // attempt succeeded. If the factory refuses or throws, the attempt fails instead.
  template <class T>
  void attach(const std::shared_ptr<T>& transport) {
    timeout_.cancel();
    std::unique_ptr<Protocol> protocol;
    try {
      protocol = factory_.build_protocol(transport->get_peer());
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
                       self->factory_.client_connection_lost(*self, reason);
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

  void begin(std::uint64_t attempt) {
    if (!current(attempt)) return;
    try {
      factory_.started_connecting(*this);
    } catch (...) {
      log_exception("started_connecting (the attempt fails)");
      if (current(attempt))
        fail(Reason(error::callback_threw, {}, "started_connecting", std::current_exception()));
      return;
    }
    if (!current(attempt)) return;
    if (timeout_seconds_ > 0) {
      std::weak_ptr<StreamConnector> weak = self_ptr();
      timeout_ = reactor_.call_later(timeout_seconds_, [weak, attempt] {
        auto self = weak.lock();
        if (!self || !self->current(attempt)) return;
        self->fail(Reason(error::timed_out, {},
                          "connecting to " + self->destination_.to_string() + " took over " +
                              std::to_string(self->timeout_seconds_) + " s"));
      });
    }
    if constexpr (kResolves) {
      std::error_code ec;
      const auto address = asio::ip::make_address(destination_.host(), ec);
      if (ec) {
        resolve(attempt);
        return;
      }
      endpoints_ = {Endpoint(address, destination_.port())};
    }
    next_ = 0;
    try_next(attempt);
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
          self->next_ = 0;
          self->try_next(attempt);
        });
  }

  void try_next(std::uint64_t attempt) {
    if (next_ >= endpoints_.size()) {
      fail(last_failure_);
      return;
    }
    const Endpoint ep = endpoints_[next_++];
    std::error_code ignored;
    socket_.close(ignored);
    socket_.async_connect(
        ep, [self = self_ptr(), attempt, ep](const std::error_code& ec) {
          if (!self->current(attempt)) return;
          if (ec) {
            const std::string where = to_address(ep).to_string();
            self->last_failure_ = Reason::from_os_error(ec, where);
            if (self->last_failure_.is(error::connection_lost))
              self->last_failure_ = Reason(error::connect_failed, ec, where);
            self->try_next(attempt);
            return;
          }
          self->established(attempt,
                            std::exchange(self->socket_, Socket(self->reactor_.context())), ep);
        });
  }

  // Makes every handler of the current attempt stale and releases its resources.
  void abandon() {
    ++attempt_;
    state_ = State::idle;
    timeout_.cancel();
    resolver_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
    if (auto t = std::move(pending_)) t->abort_connection();
  }

  void report_failure(const Reason& reason) {
    try {
      factory_.client_connection_failed(*this, reason);
    } catch (...) {
      log_exception("client_connection_failed");
    }
  }

  ClientFactory& factory_;
  const Address destination_;
  const double timeout_seconds_;
  std::conditional_t<kResolves, asio::ip::tcp::resolver, NoResolver> resolver_;
  Socket socket_;
  std::vector<Endpoint> endpoints_;  // TCP: found at each attempt; Unix: the one endpoint
  std::size_t next_ = 0;
  Reason last_failure_{error::connect_failed};
  DelayedCall timeout_;
  std::weak_ptr<Transport> transport_;
  State state_ = State::idle;
  std::uint64_t attempt_ = 0;
};

}  // namespace torsion::detail
