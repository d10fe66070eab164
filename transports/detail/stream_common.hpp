#pragma once
// Private: what the accept loop (stream_port.hpp) and the client connector
// (stream_connector.hpp) of TCP, Unix and TLS share: turning an Asio endpoint into an
// Address, logging an exception a user callback threw, wrapping a connected socket in a
// StreamEngine.

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include "framework/address.hpp"
#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/detail/stream_engine.hpp"

namespace torsion::detail {

inline Address to_address(const asio::ip::tcp::endpoint& ep) {
  return Address::ip(ep.address().to_string(), ep.port());
}

// An abstract name ("\0name") reads back as "@name", the form listen_unix takes.
inline Address to_address(const asio::local::stream_protocol::endpoint& ep) {
  std::string p = ep.path();
  if (!p.empty() && p[0] == '\0') p[0] = '@';
  return Address::unix_socket(std::move(p));
}

// Logs the exception being handled (call from a catch block) as thrown by `what`.
inline void log_exception(const char* what) {
  try {
    throw;
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("exception in ") + what + ": " + e.what());
  } catch (...) {
    log(LogLevel::error, std::string("non-standard exception in ") + what);
  }
}

// A port's or connector's hold on its factory: the factory, while it lives (a factory
// may be destroyed first; see Factory).
class FactoryRef {
 public:
  explicit FactoryRef(Factory& factory) : factory_(&factory), alive_(factory.alive_token()) {}
  // The factory, or null once it is destroyed.
  Factory* get() const noexcept { return alive_.expired() ? nullptr : factory_; }

 private:
  Factory* factory_;
  std::weak_ptr<const void> alive_;
};

// Throws std::invalid_argument unless `port` is in min..65535.
inline void check_port(int port, int min, const char* what) {
  if (port < min || port > 65535)
    throw std::invalid_argument(std::string(what) + ": port must be in " + std::to_string(min) +
                                "..65535, got " + std::to_string(port));
}

// A transport, not yet started, for a connected socket; its host is the socket's own
// address.
template <class Socket>
std::shared_ptr<StreamEngine<Socket>> make_stream_engine(Reactor& reactor, Socket socket,
                                                               Address peer) {
  std::error_code ec;
  const auto local = socket.local_endpoint(ec);
  return std::make_shared<StreamEngine<Socket>>(
      reactor, std::move(socket), ec ? Address() : to_address(local), std::move(peer));
}

}  // namespace torsion::detail
