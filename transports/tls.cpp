// The glue: listen_ssl, connect_ssl and start_tls put the TLS layer
// (transports/detail/tls_layer.hpp) over the stream engine. listen_ssl is listen_tcp's
// accept loop with a layer as each connection's protocol, which builds the user's protocol
// only once the handshake is done; connect_ssl is connect_tcp's connector, which counts
// the attempt as connected only then; start_tls switches a with_start_tls wrapper (a layer
// that passes everything through) to TLS.

#include "transports/tls.hpp"

#include <openssl/ssl.h>

#include <asio/ip/tcp.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "framework/log.hpp"
#include "transports/detail/log_limit.hpp"
#include "transports/detail/pool_listen.hpp"
#include "transports/detail/stream_connector.hpp"
#include "transports/detail/stream_port.hpp"
#include "transports/detail/tls_context.hpp"
#include "transports/detail/tls_layer.hpp"

namespace torsion {

namespace {

using tcp = asio::ip::tcp;
using detail::TlsLayer;

// A new SSL for one connection of `ctx`; throws std::runtime_error if OpenSSL cannot.
SSL* new_ssl(const asio::ssl::context& ctx) {
  SSL* ssl = SSL_new(const_cast<asio::ssl::context&>(ctx).native_handle());
  if (!ssl) throw std::runtime_error("TLS: SSL_new failed (out of memory)");
  return ssl;
}

// A transport for a connected socket, not started.
auto make_below(Reactor& reactor, tcp::socket socket, const Address& peer, bool no_delay = true) {
  std::error_code ec;
  if (no_delay) socket.set_option(tcp::no_delay(true), ec);  // a failure here is harmless
  return detail::make_stream_engine(reactor, std::move(socket), peer);
}

// What a port's handshakes share with it: how many are under way, and the limits on
// log lines about them. One reactor's thread only.
struct HandshakeGate {
  std::size_t in_progress = 0;
  detail::LogLimiter failed_log;
  detail::LogLimiter refused_log;
};

class TlsPort final : public detail::StreamPort<tcp> {
 public:
  TlsPort(Reactor& reactor, Factory& factory, const TlsServerContext& context)
      : StreamPort(reactor, factory), context_(context) {}

  void open(const tcp::endpoint& ep, const TlsListenOptions& options, std::error_code& ec) {
    no_delay_ = options.no_delay;
    max_handshakes_ = options.max_handshakes;
    Address host =
        detail::open_tcp_acceptor(acceptor(), ep, options.backlog, options.reuse_port, ec);
    if (!ec) start(std::move(host));
  }

  // For the shared_ptr overload: the port and each handshake it starts keep this alive.
  void keep_alive(std::shared_ptr<const void> owner) { owner_ = std::move(owner); }

 private:
  void accepted(tcp::socket socket, const Address& peer) override {
    if (max_handshakes_ > 0 && gate_->in_progress >= max_handshakes_) {
      // Closed before any TLS work: a flood of half-open handshakes costs a descriptor
      // for a moment, not a handshake's memory for handshake_timeout.
      if (auto more = gate_->refused_log.admit(reactor_.seconds()))
        log(LogLevel::warning, "TLS port " + get_host().to_string() + ": " +
                                   std::to_string(max_handshakes_) +
                                   " handshakes under way; closed the connection from " +
                                   peer.to_string() + *more);
      return;  // `socket` closes
    }
    // The configuration in force now; the connection keeps it (a reload serves the next).
    std::shared_ptr<const TlsServerContext::Impl> config = context_.impl();
    const auto& impl = *config;
    auto below = make_below(reactor_, std::move(socket), peer, no_delay_);
    TlsLayer::Settings settings;
    settings.reactor = &reactor_;
    settings.handshake_timeout = impl.handshake_timeout;
    settings.wait_close_notify = true;
    settings.close_timeout = impl.close_timeout;
    settings.log = below->log_context();
    settings.ssl_ctx = const_cast<asio::ssl::context&>(impl.ctx).native_handle();
    settings.config = config;
    // Holds a place among the handshakes under way until the hook is gone (it runs once,
    // or dies with the connection).
    ++gate_->in_progress;
    std::shared_ptr<void> slot(nullptr, [gate = gate_](void*) { --gate->in_progress; });
    auto layer = std::make_unique<TlsLayer>(
        nullptr, /*server=*/true, std::move(settings),
        [factory = factory_, &impl, owner = owner_, gate = gate_, slot = std::move(slot),
         &reactor = reactor_](TlsLayer& t, const Reason* failure) {
          if (failure) {
            if (auto more = gate->failed_log.admit(reactor.seconds()))
              log(LogLevel::info, t.log_context(),
                  "TLS handshake failed: " + failure->message() + *more);
            if (const auto& hook = impl.handshake_failed) {
              try {
                hook(t.log_context().peer, *failure);
              } catch (...) {
                detail::log_exception("TlsServerOptions::handshake_failed");
              }
            }
            return;
          }
          if (auto protocol = detail::build_server_protocol(factory, t.get_peer()))
            t.start(std::move(protocol));
          else
            t.abort_connection();
        });
    below->start(std::move(layer));
  }

  const TlsServerContext& context_;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<HandshakeGate> gate_ = std::make_shared<HandshakeGate>();
  std::size_t max_handshakes_ = 0;
  bool no_delay_ = true;
};

class TlsConnector final : public detail::StreamConnector<tcp> {
 public:
  TlsConnector(Reactor& reactor, std::string host, int port, ClientFactory& factory,
               const TlsClientContext& context)
      : StreamConnector(reactor, factory,
                        Address::ip(std::move(host), static_cast<std::uint16_t>(port)),
                        detail::ConnectTiming::within(context.impl().options.timeout)),
        context_(context) {}

  // For the shared_ptr overload: the connector keeps this alive.
  void keep_alive(std::shared_ptr<const void> owner) { owner_ = std::move(owner); }

 private:
  // The attempt goes on through the handshake (the connector's timeout covers it): it
  // succeeds, with the user's protocol attached to the layer, once that is done.
  void established(std::uint64_t attempt, tcp::socket socket, const tcp::endpoint& ep) override {
    auto& impl = context_.impl();
    const auto& options = impl.options;
    const Address peer = detail::to_address(ep);
    auto below = make_below(reactor_, std::move(socket), peer);
    SSL* ssl = new_ssl(impl.ctx);
    detail::configure_client(
        ssl, impl, options.server_name.empty() ? get_destination().host() : options.server_name,
        peer);
    TlsLayer::Settings settings;
    settings.reactor = &reactor_;
    settings.wait_close_notify = true;
    settings.close_timeout = options.close_timeout;
    settings.log = below->log_context();
    std::weak_ptr<Transport> weak_below = below;
    auto layer = std::make_unique<TlsLayer>(
        ssl, /*server=*/false, std::move(settings),
        [self = std::static_pointer_cast<TlsConnector>(shared_from_this()), attempt,
         weak_below](TlsLayer& t, const Reason* failure) {
          if (!self->current(attempt)) return;
          if (failure) {
            self->pending_.reset();  // the layer closes it, after the alert
            self->fail(*failure);
            return;
          }
          // The layer lives as long as the transport below: a handle to it that shares
          // the transport's ownership.
          if (auto b = weak_below.lock()) self->attach(std::shared_ptr<TlsLayer>(b, &t));
        });
    pending_ = below;
    below->start(std::move(layer));
  }

  const TlsClientContext& context_;
  std::shared_ptr<const void> owner_;
};

TlsLayer& wrapper(Transport& transport) {
  auto* w = find_transport<TlsLayer>(transport);  // through any ProtocolWrappers above it
  if (!w)
    throw std::logic_error(
        "start_tls: the transport is not a with_start_tls wrapper (wrap the protocol with "
        "with_start_tls when the factory builds it)");
  return *w;
}

}  // namespace

std::unique_ptr<Protocol> with_start_tls(std::unique_ptr<Protocol> inner) {
  if (!inner) throw std::invalid_argument("with_start_tls: null protocol");
  return std::make_unique<TlsLayer>(std::move(inner));
}

void start_tls(Transport& transport, const TlsClientContext& context,
               const std::string& server_name) {
  auto& impl = context.impl();
  TlsLayer& layer = wrapper(transport);
  SSL* ssl = new_ssl(impl.ctx);
  detail::configure_client(ssl, impl, server_name, transport.get_peer());
  layer.begin(ssl, /*server=*/false, impl.options.close_timeout);
}

void start_tls(Transport& transport, const TlsServerContext& context) {
  TlsLayer& layer = wrapper(transport);
  const auto config = context.impl();
  layer.begin(new_ssl(config->ctx), /*server=*/true, config->close_timeout, config);
}

namespace {

std::shared_ptr<TlsPort> open_tls_port(Reactor& reactor, int port, Factory& factory,
                                       const TlsServerContext& context,
                                       const TlsListenOptions& options) {
  const auto ep = detail::tcp_listen_endpoint(options.interface, port, "listen_ssl");
  if (options.backlog < 1 || options.backlog > 65535)
    throw std::invalid_argument("listen_ssl: backlog must be in 1..65535, got " +
                                std::to_string(options.backlog));
  auto listening = std::make_shared<TlsPort>(reactor, factory, context);
  std::error_code ec;
  listening->open(ep, options, ec);
  detail::opened(reactor, listening, ec);
  if (ec)
    throw std::system_error(ec, "listen_ssl on " +
                                    (options.interface.empty() ? "*" : options.interface) + ":" +
                                    std::to_string(port));
  return listening;
}

}  // namespace

std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          const TlsServerContext& context,
                                          const std::string& interface) {
  TlsListenOptions options;
  options.interface = interface;
  options.backlog = context.impl()->backlog;
  return open_tls_port(reactor, port, factory, context, options);
}

std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          std::shared_ptr<const TlsServerContext> context,
                                          const TlsListenOptions& options) {
  if (!context) throw std::invalid_argument("listen_ssl: null context");
  auto listening = open_tls_port(reactor, port, factory, *context, options);
  listening->keep_alive(std::move(context));
  return listening;
}

std::vector<std::shared_ptr<ListeningPort>> listen_ssl_pool(
    ReactorPool& pool, int port, Factory& factory,
    std::shared_ptr<const TlsServerContext> context, TlsListenOptions options) {
  if (!context) throw std::invalid_argument("listen_ssl_pool: null context");
  options.reuse_port = true;
  return detail::listen_on_pool(pool, port, "listen_ssl_pool",
                                [&](Reactor& reactor, int p, std::size_t) {
                                  return listen_ssl(reactor, p, factory, context, options);
                                });
}

std::shared_ptr<Connector> connect_ssl(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory, const TlsClientContext& context) {
  detail::check_port(port, 1, "connect_ssl");
  if (host.empty()) throw std::invalid_argument("connect_ssl: empty host");
  auto connector = std::make_shared<TlsConnector>(reactor, std::move(host), port, factory, context);
  connector->connect();
  return connector;
}

std::shared_ptr<ListeningPort> listen_ssl(Reactor& reactor, int port, Factory& factory,
                                          std::shared_ptr<const TlsServerContext> context,
                                          const std::string& interface) {
  if (!context) throw std::invalid_argument("listen_ssl: null context");
  TlsListenOptions options;
  options.interface = interface;
  options.backlog = context->impl()->backlog;
  return listen_ssl(reactor, port, factory, std::move(context), options);
}

std::shared_ptr<Connector> connect_ssl(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory,
                                       std::shared_ptr<const TlsClientContext> context) {
  if (!context) throw std::invalid_argument("connect_ssl: null context");
  auto connector = std::static_pointer_cast<TlsConnector>(
      connect_ssl(reactor, std::move(host), port, factory, *context));
  connector->keep_alive(std::move(context));  // begin() runs later, from the loop
  return connector;
}

std::optional<TlsInfo> tls_info(const Transport& transport) {
  // Through any ProtocolWrappers (TimeoutFactory...) between the protocol and the layer.
  if (const auto* t = find_transport<TlsLayer>(transport)) return t->info();
  return std::nullopt;
}

}  // namespace torsion
