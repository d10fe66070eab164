#include "transports/tcp.hpp"

#include <asio/ip/tcp.hpp>
#include <cmath>
#include <stdexcept>
#include <string>

#include "transports/detail/bound_endpoint.hpp"
#include "transports/detail/stream_connector.hpp"
#include "transports/detail/stream_port.hpp"

namespace torsion {

namespace detail {

asio::ip::tcp::endpoint tcp_listen_endpoint(const std::string& interface, int port,
                                            const char* what) {
  check_port(port, 0, what);
  const auto p = static_cast<std::uint16_t>(port);
  if (interface.empty()) return {asio::ip::tcp::v4(), p};
  std::error_code ec;
  const auto address = asio::ip::make_address(interface, ec);
  if (ec)
    throw std::invalid_argument(std::string(what) + ": interface must be a numeric address, got '" +
                                interface + "'");
  return {address, p};
}

Address open_tcp_acceptor(asio::ip::tcp::acceptor& acceptor, const asio::ip::tcp::endpoint& ep,
                          int backlog, bool reuse_port, std::error_code& ec) {
  Address host;
  acceptor.open(ep.protocol(), ec);
  if (ec) return host;
  acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec && reuse_port) {
    const int on = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
      ec = std::error_code(errno, std::system_category());
  }
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(backlog, ec);
  const auto local = bound_endpoint_or_close(acceptor, ec);
  if (!ec) host = to_address(local);
  return host;
}

}  // namespace detail

namespace {

using tcp = asio::ip::tcp;

// A transport, not yet started, for a connected socket.
auto make_transport(Reactor& reactor, tcp::socket socket, const Address& peer, bool no_delay) {
  std::error_code ec;
  if (no_delay) socket.set_option(tcp::no_delay(true), ec);  // a failure here is harmless
  return detail::make_stream_engine(reactor, std::move(socket), peer);
}

class TcpPort final : public detail::StreamPort<tcp> {
 public:
  TcpPort(Reactor& reactor, Factory& factory) : StreamPort(reactor, factory) {}

  void open(const tcp::endpoint& ep, const TcpListenOptions& options, std::error_code& ec) {
    no_delay_ = options.no_delay;
    Address host =
        detail::open_tcp_acceptor(acceptor(), ep, options.backlog, options.reuse_port, ec);
    if (!ec) start(std::move(host));
  }

 private:
  void accepted(tcp::socket socket, const Address& peer) override {
    if (auto protocol = detail::build_server_protocol(factory_, peer))
      make_transport(reactor_, std::move(socket), peer, no_delay_)->start(std::move(protocol));
  }

  bool no_delay_ = true;
};

class TcpConnector final : public detail::StreamConnector<tcp> {
 public:
  TcpConnector(Reactor& reactor, std::string host, int port, ClientFactory& factory,
               const TcpConnectOptions& options)
      : StreamConnector(reactor, factory,
                        Address::ip(std::move(host), static_cast<std::uint16_t>(port)),
                        detail::ConnectTiming{.timeout = options.timeout,
                                              .attempt_delay = options.attempt_delay,
                                              .attempt_timeout = options.attempt_timeout,
                                              .clock = options.clock,
                                              .resolver = options.resolver,
                                              .bind = options.bind.value_or(Address()),
                                              .family = options.family}),
        no_delay_(options.no_delay) {}

 private:
  void established(std::uint64_t, tcp::socket socket, const tcp::endpoint& ep) override {
    attach(make_transport(reactor_, std::move(socket), detail::to_address(ep), no_delay_));
  }

  bool no_delay_;
};

}  // namespace

std::shared_ptr<ListeningPort> listen_tcp(Reactor& reactor, int port, Factory& factory,
                                          const TcpListenOptions& options,
                                          std::error_code& ec) {
  const auto ep = detail::tcp_listen_endpoint(options.interface, port, "listen_tcp");
  if (options.backlog < 1)
    throw std::invalid_argument("listen_tcp: backlog must be >= 1, got " +
                                std::to_string(options.backlog));
  auto listening = std::make_shared<TcpPort>(reactor, factory);
  listening->open(ep, options, ec);
  return detail::opened(reactor, std::move(listening), ec);
}

std::shared_ptr<ListeningPort> listen_tcp(Reactor& reactor, int port, Factory& factory,
                                          const TcpListenOptions& options) {
  std::error_code ec;
  auto listening = listen_tcp(reactor, port, factory, options, ec);
  detail::throw_if_listen_failed(ec, "listen_tcp", options.interface, port);
  return listening;
}

std::shared_ptr<Connector> connect_tcp(Reactor& reactor, std::string host, int port,
                                       ClientFactory& factory, const TcpConnectOptions& options) {
  detail::check_port(port, 1, "connect_tcp");
  const auto check = [](double seconds, const char* name) {
    if (std::isnan(seconds) || seconds < 0)
      throw std::invalid_argument(std::string("connect_tcp: ") + name +
                                  " must be >= 0 seconds, got " + std::to_string(seconds));
  };
  check(options.timeout, "timeout");
  check(options.attempt_delay, "attempt_delay");
  check(options.attempt_timeout, "attempt_timeout");
  if (host.empty()) throw std::invalid_argument("connect_tcp: empty host");
  TcpConnectOptions placed = options;
  using Family = Address::Family;
  if (options.family == Family::unix_socket)
    throw std::invalid_argument("connect_tcp: family must be ipv4, ipv6 or none");
  if (options.bind) {
    std::error_code ec;
    const auto local = asio::ip::make_address(options.bind->host(), ec);
    if (ec || options.bind->family() == Family::unix_socket ||
        options.bind->family() == Family::none)
      throw std::invalid_argument("connect_tcp: bind must be a numeric IP address, got '" +
                                  options.bind->to_string() + "'");
    const Family bound = local.is_v6() ? Family::ipv6 : Family::ipv4;
    if (options.family != Family::none && options.family != bound)
      throw std::invalid_argument("connect_tcp: bind address " + options.bind->to_string() +
                                  " is not of the family asked for");
    placed.family = bound;  // an IPv4 socket cannot reach an IPv6 address, nor the reverse
  }
  auto connector = std::make_shared<TcpConnector>(reactor, std::move(host), port, factory, placed);
  connector->connect();
  return connector;
}

}  // namespace torsion
