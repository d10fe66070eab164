#pragma once
/// \file
/// The port forwarder of examples/port_forward.cpp, as a Factory that tests can use too.
///
/// Each accepted connection gets an outgoing connection to HOST:PORT, and bytes are
/// copied both ways by the library's relay (protocols/relay.hpp), with back-pressure in
/// both directions (a full write buffer on one side pauses reading on the other),
/// half-closes forwarded and memory per pair bounded however fast one peer sends and
/// however slowly the other reads. Between two TCP sockets the bytes move with splice(2),
/// socket to pipe to socket, never through the process (set_zero_copy(false) copies).

#include <memory>
#include <string>
#include <utility>

#include "framework/connect_protocol.hpp"
#include "framework/reactor.hpp"
#include "protocols/relay.hpp"
#include "transports/tcp.hpp"

namespace torsion::examples {

/// Forwards every accepted connection to host:port. Reactor thread only.
class PortForwardFactory : public RelayFactory {
 public:
  PortForwardFactory(Reactor& reactor, std::string host, int port)
      : RelayFactory([&reactor, host = std::move(host), port](std::unique_ptr<Protocol> p) {
          return connect_protocol_with(
              reactor, [&](ClientFactory& f) { return connect_tcp(reactor, host, port, f); },
              std::move(p));
        }) {}
};

}  // namespace torsion::examples
