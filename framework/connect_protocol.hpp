#pragma once
/// \file
/// connect_protocol_with: connect with a protocol instance instead of a ClientFactory
/// (Twisted's connectProtocol), for any way of connecting. transports/endpoints.hpp has
/// connect_protocol, for an endpoint or an endpoint string.

#include <functional>
#include <memory>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"

namespace torsion {

/// Starts a connection whose protocol is `protocol`: `connect` starts the attempt with
/// the one-off ClientFactory it is given (an endpoint's connect, or a lambda calling
/// connect_tcp...) and returns its Connector. Fires from the loop once the protocol's
/// connection_made has run, with the protocol (valid until its connection_lost returns).
/// Fails with ConnectionError (framework/stream.hpp): the attempt's Reason, or the
/// connection's if it ended before the Deferred fired. Cancelling it stops the attempt.
/// The protocol owns the factory, so both live exactly as long as the connection.
/// Throws std::invalid_argument for a null protocol; what `connect` throws propagates.
[[nodiscard]] Deferred<Protocol*> connect_protocol_with(
    Reactor& reactor, const std::function<std::shared_ptr<Connector>(ClientFactory&)>& connect,
    std::unique_ptr<Protocol> protocol);

}  // namespace torsion
