#include "transports/adopt.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <string>
#include <type_traits>
#include <utility>

#include "transports/detail/stream_common.hpp"
#include "transports/detail/stream_port.hpp"

namespace torsion {
namespace {

using tcp = asio::ip::tcp;
using local_stream = asio::local::stream_protocol;

std::error_code last_error() { return {errno, std::system_category()}; }

int int_option(int fd, int name, std::error_code& ec) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) ec = last_error();
  return value;
}

// The family (AF_INET, AF_INET6, AF_UNIX) of `fd` when it is a TCP or Unix stream socket
// that listens (or, with listening false, does not); sets `ec` otherwise.
int stream_family(int fd, bool listening, std::error_code& ec) {
  const int type = int_option(fd, SO_TYPE, ec);
  if (ec) return 0;
  if (type != SOCK_STREAM) {
    ec = std::make_error_code(std::errc::wrong_protocol_type);
    return 0;
  }
  const int family = int_option(fd, SO_DOMAIN, ec);
  if (ec) return 0;
  if (family == AF_INET || family == AF_INET6) {
    const int protocol = int_option(fd, SO_PROTOCOL, ec);
    if (ec) return 0;
    if (protocol != IPPROTO_TCP) {
      ec = std::make_error_code(std::errc::protocol_not_supported);
      return 0;
    }
  } else if (family != AF_UNIX) {
    ec = std::make_error_code(std::errc::address_family_not_supported);
    return 0;
  }
  const bool accepting = int_option(fd, SO_ACCEPTCONN, ec) != 0;
  if (ec) return 0;
  if (accepting != listening) {
    ec = std::make_error_code(listening ? std::errc::invalid_argument : std::errc::not_connected);
    return 0;
  }
  return family;
}

template <class Proto>
Proto protocol_for(int family) {
  if constexpr (std::is_same_v<Proto, tcp>)
    return family == AF_INET6 ? tcp::v6() : tcp::v4();
  else
    return Proto();
}

// Serves an accepted or adopted socket: a protocol from `factory` (unless it is gone),
// then a transport.
template <class Socket>
void serve(Reactor& reactor, const detail::FactoryRef& factory, Socket socket,
           const Address& peer) {
  auto protocol = detail::build_server_protocol(factory, peer);
  if (!protocol) return;  // `socket` closes as it goes
  if constexpr (std::is_same_v<Socket, tcp::socket>) {
    std::error_code ignored;  // as listen_tcp: TCP_NODELAY, a failure is harmless
    socket.set_option(tcp::no_delay(true), ignored);
  }
  detail::make_stream_engine(reactor, std::move(socket), peer)->start(std::move(protocol));
}

template <class Proto>
class AdoptedPort final : public detail::StreamPort<Proto> {
 public:
  AdoptedPort(Reactor& reactor, Factory& factory) : detail::StreamPort<Proto>(reactor, factory) {}

  void adopt(int fd, int family, std::error_code& ec) {
    auto& acceptor = this->acceptor();
    acceptor.assign(protocol_for<Proto>(family), fd, ec);
    if (ec) return;
    const auto local = acceptor.local_endpoint(ec);
    if (ec) {
      std::error_code ignored;
      (void)acceptor.release(ignored);  // not taken over after all: the caller keeps fd
      return;
    }
    this->start(detail::to_address(local));
  }

 private:
  void accepted(typename Proto::socket socket, const Address& peer) override {
    serve(this->reactor_, this->factory_, std::move(socket), peer);
  }
};

template <class Proto>
std::shared_ptr<ListeningPort> adopt_port(Reactor& reactor, int fd, int family, Factory& factory,
                                          std::error_code& ec) {
  auto port = std::make_shared<AdoptedPort<Proto>>(reactor, factory);
  port->adopt(fd, family, ec);
  return detail::opened(reactor, std::move(port), ec);
}

template <class Proto>
void adopt_socket(Reactor& reactor, int fd, int family, Factory& factory, std::error_code& ec) {
  typename Proto::socket socket(reactor.context());
  socket.assign(protocol_for<Proto>(family), fd, ec);
  if (ec) return;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) {
    std::error_code ignored;
    (void)socket.release(ignored);
    return;
  }
  // Built and started from the loop: no callback runs inside adopt_connection. The
  // socket travels in a shared_ptr because call_soon takes a copyable function.
  auto held = std::make_shared<typename Proto::socket>(std::move(socket));
  // The factory may be destroyed before then: the FactoryRef says so.
  reactor.call_soon([&reactor, ref = detail::FactoryRef(factory), held,
                     address = detail::to_address(peer)] {
    serve(reactor, ref, std::move(*held), address);
  });
}

}  // namespace

std::shared_ptr<ListeningPort> adopt_listening_socket(Reactor& reactor, int fd, Factory& factory,
                                                      std::error_code& ec) {
  ec.clear();
  const int family = stream_family(fd, true, ec);
  if (ec) return nullptr;
  return family == AF_UNIX ? adopt_port<local_stream>(reactor, fd, family, factory, ec)
                           : adopt_port<tcp>(reactor, fd, family, factory, ec);
}

std::shared_ptr<ListeningPort> adopt_listening_socket(Reactor& reactor, int fd, Factory& factory) {
  std::error_code ec;
  auto port = adopt_listening_socket(reactor, fd, factory, ec);
  if (ec) throw std::system_error(ec, "adopt_listening_socket: descriptor " + std::to_string(fd));
  return port;
}

void adopt_connection(Reactor& reactor, int fd, Factory& factory, std::error_code& ec) {
  ec.clear();
  const int family = stream_family(fd, false, ec);
  if (ec) return;
  if (family == AF_UNIX)
    adopt_socket<local_stream>(reactor, fd, family, factory, ec);
  else
    adopt_socket<tcp>(reactor, fd, family, factory, ec);
}

void adopt_connection(Reactor& reactor, int fd, Factory& factory) {
  std::error_code ec;
  adopt_connection(reactor, fd, factory, ec);
  if (ec) throw std::system_error(ec, "adopt_connection: descriptor " + std::to_string(fd));
}

}  // namespace torsion
