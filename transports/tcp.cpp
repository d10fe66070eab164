#include "transports/tcp.hpp"

#include <asio/ip/tcp.hpp>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/log.hpp"
#include "transports/detail/stream_transport.hpp"

namespace torsion {
namespace {

using tcp = asio::ip::tcp;
using TcpTransport = detail::StreamTransport<tcp::socket>;

Address to_address(const tcp::endpoint& ep) {
  return Address::ip(ep.address().to_string(), ep.port());
}

void check_port(int port, int min, const char* what) {
  if (port < min || port > 65535)
    throw std::invalid_argument(std::string(what) + ": port must be in " + std::to_string(min) +
                                "..65535, got " + std::to_string(port));
}

void log_exception(const char* what) {
  try {
    throw;
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("exception in ") + what + ": " + e.what());
  } catch (...) {
    log(LogLevel::error, std::string("non-standard exception in ") + what);
  }
}

// Hands an established socket to a new transport running `protocol`.
std::shared_ptr<TcpTransport> start_transport(Reactor& reactor, tcp::socket socket,
                                              const Address& peer, bool no_delay,
                                              std::unique_ptr<Protocol> protocol,
                                              TcpTransport::LostHook on_lost = {}) {
  std::error_code ec;
  if (no_delay) socket.set_option(tcp::no_delay(true), ec);  // a failure here is harmless
  const auto local = socket.local_endpoint(ec);
  auto transport = std::make_shared<TcpTransport>(reactor, std::move(socket),
                                                  ec ? Address() : to_address(local), peer);
  transport->start(std::move(protocol), std::move(on_lost));
  return transport;
}

class TcpPort final : public ListeningPort, public std::enable_shared_from_this<TcpPort> {
 public:
  TcpPort(Reactor& reactor, Factory& factory)
      : reactor_(reactor), factory_(factory), acceptor_(reactor.context()),
        pending_(reactor.context()) {}

  void open(const tcp::endpoint& ep, const TcpListenOptions& options, std::error_code& ec) {
    no_delay_ = options.no_delay;
    acceptor_.open(ep.protocol(), ec);
    if (ec) return;
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && options.reuse_port) {
      const int on = 1;
      if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
        ec = std::error_code(errno, std::system_category());
    }
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(options.backlog, ec);
    if (!ec) {
      const auto local = acceptor_.local_endpoint(ec);
      if (!ec) host_ = to_address(local);
    }
    if (ec) {
      std::error_code ignored;
      acceptor_.close(ignored);
      return;
    }
    listening_ = true;
    accept_next();
  }

  Address get_host() const override { return host_; }
  bool listening() const override { return listening_; }

  void stop_listening() override {
    if (!listening_) return;
    listening_ = false;
    backoff_.cancel();
    std::error_code ec;
    acceptor_.close(ec);
  }

 private:
  void accept_next() {
    acceptor_.async_accept(pending_, peer_,
                           [self = shared_from_this()](const std::error_code& ec) {
                             self->on_accept(ec);
                           });
  }

  void on_accept(const std::error_code& ec) {
    if (!listening_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      const auto os = normalize_os_error(ec);
      if (os == std::errc::too_many_files_open || os == std::errc::too_many_files_open_in_system ||
          os == std::errc::no_buffer_space || os == std::errc::not_enough_memory) {
        // Out of descriptors: keep the socket, wait, try again, instead of spinning.
        log(LogLevel::warning, "accept on " + host_.to_string() + " failed: " + ec.message() +
                                   "; retrying in 0.1 s");
        std::weak_ptr<TcpPort> weak = shared_from_this();
        backoff_ = reactor_.call_later(0.1, [weak] {
          if (auto self = weak.lock(); self && self->listening_) self->accept_next();
        });
        return;
      }
      log(LogLevel::warning, "accept on " + host_.to_string() + " failed: " + ec.message());
      accept_next();
      return;
    }
    const Address peer = to_address(peer_);
    std::unique_ptr<Protocol> protocol;
    try {
      protocol = factory_.build_protocol(peer);
    } catch (...) {
      log_exception("build_protocol (the connection is refused)");
    }
    if (protocol) {
      start_transport(reactor_, std::move(pending_), peer, no_delay_, std::move(protocol));
    } else {
      std::error_code ignored;
      pending_.close(ignored);
    }
    pending_ = tcp::socket(reactor_.context());
    if (listening_) accept_next();
  }

  Reactor& reactor_;
  Factory& factory_;
  tcp::acceptor acceptor_;
  tcp::socket pending_;
  tcp::endpoint peer_;
  Address host_;
  bool listening_ = false;
  bool no_delay_ = true;
  DelayedCall backoff_;
};

class TcpConnector final : public Connector, public std::enable_shared_from_this<TcpConnector> {
 public:
  TcpConnector(Reactor& reactor, std::string host, int port, ClientFactory& factory,
               const TcpConnectOptions& options)
      : reactor_(reactor), host_(std::move(host)), port_(static_cast<std::uint16_t>(port)),
        factory_(factory), options_(options), resolver_(reactor.context()),
        socket_(reactor.context()) {}

  Address get_destination() const override { return Address::ip(host_, port_); }

  void connect() override {
    if (state_ != State::idle) return;
    state_ = State::connecting;
    const auto attempt = ++attempt_;
    asio::post(reactor_.context(), [self = shared_from_this(), attempt] { self->begin(attempt); });
  }

  void disconnect() override {
    if (state_ == State::connecting) {
      // Give the attempt up now, so that connect() may start another at once; the factory
      // hears about it from the loop.
      abandon();
      asio::post(reactor_.context(), [self = shared_from_this()] {
        self->report_failure(Reason(error::cancelled, {}, "disconnect() while connecting"));
      });
    } else if (state_ == State::connected) {
      if (auto t = transport_.lock()) t->lose_connection();
    }
  }

 private:
  enum class State { idle, connecting, connected };

  void begin(std::uint64_t attempt) {
    if (attempt != attempt_ || state_ != State::connecting) return;
    try {
      factory_.started_connecting(*this);
    } catch (...) {
      log_exception("started_connecting (the attempt fails)");
      if (attempt == attempt_ && state_ == State::connecting)
        fail(Reason(error::callback_threw, {}, "started_connecting", std::current_exception()));
      return;
    }
    if (attempt != attempt_ || state_ != State::connecting) return;
    if (options_.timeout > 0) {
      std::weak_ptr<TcpConnector> weak = shared_from_this();
      timeout_ = reactor_.call_later(options_.timeout, [weak, attempt] {
        auto self = weak.lock();
        if (!self || self->attempt_ != attempt || self->state_ != State::connecting) return;
        self->fail(Reason(error::timed_out, {},
                          "connecting to " + self->get_destination().to_string() + " took over " +
                              std::to_string(self->options_.timeout) + " s"));
      });
    }
    std::error_code ec;
    const auto address = asio::ip::make_address(host_, ec);
    if (!ec) {
      endpoints_ = {tcp::endpoint(address, port_)};
      next_ = 0;
      try_next(attempt);
      return;
    }
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self = shared_from_this(), attempt](const std::error_code& rec,
                                             tcp::resolver::results_type results) {
          if (attempt != self->attempt_ || self->state_ != State::connecting) return;
          if (rec || results.empty()) {
            self->fail(Reason(error::lookup_failed, rec, self->host_));
            return;
          }
          self->endpoints_.clear();
          for (const auto& entry : results) self->endpoints_.push_back(entry.endpoint());
          self->next_ = 0;
          self->try_next(attempt);
        });
  }

  void try_next(std::uint64_t attempt) {
    if (next_ >= endpoints_.size()) {
      fail(last_failure_);
      return;
    }
    const tcp::endpoint ep = endpoints_[next_++];
    std::error_code ignored;
    socket_.close(ignored);
    socket_.async_connect(ep, [self = shared_from_this(), attempt, ep](const std::error_code& ec) {
      if (attempt != self->attempt_ || self->state_ != State::connecting) return;
      if (ec) {
        self->last_failure_ = Reason::from_os_error(ec, to_address(ep).to_string());
        if (self->last_failure_.is(error::connection_lost))
          self->last_failure_ = Reason(error::connect_failed, ec, to_address(ep).to_string());
        self->try_next(attempt);
        return;
      }
      self->connected(ep);
    });
  }

  void connected(const tcp::endpoint& ep) {
    timeout_.cancel();
    const Address peer = to_address(ep);
    std::unique_ptr<Protocol> protocol;
    try {
      protocol = factory_.build_protocol(peer);
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
    transport_ = start_transport(
        reactor_, std::move(socket_), peer, options_.no_delay, std::move(protocol),
        [self = shared_from_this()](const Reason& reason) {
          self->state_ = State::idle;
          self->factory_.client_connection_lost(*self, reason);
        });
    socket_ = tcp::socket(reactor_.context());
  }

  void fail(const Reason& reason) {
    abandon();
    report_failure(reason);
  }

  // Makes every handler of the current attempt stale and releases its resources.
  void abandon() {
    ++attempt_;
    state_ = State::idle;
    timeout_.cancel();
    resolver_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
  }

  void report_failure(const Reason& reason) {
    try {
      factory_.client_connection_failed(*this, reason);
    } catch (...) {
      log_exception("client_connection_failed");
    }
  }

  Reactor& reactor_;
  std::string host_;
  std::uint16_t port_;
  ClientFactory& factory_;
  TcpConnectOptions options_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  std::vector<tcp::endpoint> endpoints_;
  std::size_t next_ = 0;
  Reason last_failure_{error::connect_failed};
  DelayedCall timeout_;
  std::weak_ptr<TcpTransport> transport_;
  State state_ = State::idle;
  std::uint64_t attempt_ = 0;
};

tcp::endpoint listen_endpoint(const std::string& interface, int port) {
  const auto p = static_cast<std::uint16_t>(port);
  if (interface.empty()) return {tcp::v4(), p};
  std::error_code ec;
  const auto address = asio::ip::make_address(interface, ec);
  if (ec)
    throw std::invalid_argument("listen_tcp: interface must be a numeric address, got '" +
                                interface + "'");
  return {address, p};
}

}  // namespace

std::shared_ptr<ListeningPort> listen_tcp(Reactor& reactor, int port, Factory& factory,
                                          const TcpListenOptions& options,
                                          std::error_code& ec) {
  check_port(port, 0, "listen_tcp");
  if (options.backlog < 1)
    throw std::invalid_argument("listen_tcp: backlog must be >= 1, got " +
                                std::to_string(options.backlog));
  const auto ep = listen_endpoint(options.interface, port);
  auto listening = std::make_shared<TcpPort>(reactor, factory);
  listening->open(ep, options, ec);
  if (ec) {
    ec = normalize_os_error(ec);
    return nullptr;
  }
  return listening;
}

std::shared_ptr<ListeningPort> listen_tcp(Reactor& reactor, int port, Factory& factory,
                                          const TcpListenOptions& options) {
  std::error_code ec;
  auto listening = listen_tcp(reactor, port, factory, options, ec);
  if (ec)
    throw std::system_error(ec, "listen_tcp on " +
                                    (options.interface.empty() ? "*" : options.interface) + ":" +
                                    std::to_string(port));
  return listening;
}

std::shared_ptr<Connector> connect_tcp(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory, const TcpConnectOptions& options) {
  check_port(port, 1, "connect_tcp");
  if (std::isnan(options.timeout) || options.timeout < 0)
    throw std::invalid_argument("connect_tcp: timeout must be >= 0 seconds, got " +
                                std::to_string(options.timeout));
  if (host.empty()) throw std::invalid_argument("connect_tcp: empty host");
  auto connector = std::make_shared<TcpConnector>(reactor, std::move(host), port, factory, options);
  connector->connect();
  return connector;
}

}  // namespace torsion
