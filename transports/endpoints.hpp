#pragma once
/// \file
/// Endpoints: listen or connect from a one-line description such as
/// "tcp:8080:interface=127.0.0.1:backlog=128" or "tcp:host=example.com:port=80:timeout=5",
/// so that programs take where to listen or connect from a command line or configuration
/// file, and a new transport is a new string, not new code.
///
/// Built-in types:
///  - server "tcp": `tcp:PORT[:interface=ADDR][:backlog=N][:reuse_port=BOOL]`
///    (PORT may also be `port=PORT`; ADDR numeric, IPv6 colons escaped: `interface=\:\:1`);
///  - client "tcp": `tcp:HOST:PORT[:timeout=SECONDS]` or `tcp:host=HOST:port=PORT[...]`;
///  - server "unix": `unix:PATH[:mode=OCTAL][:backlog=N][:remove_stale=BOOL]`
///    (PATH may also be `path=PATH`; '@' starts an abstract name; mode as chmod: 660);
///  - client "unix": `unix:PATH[:timeout=SECONDS]`;
///  - server "systemd": `systemd:index=N` or `systemd:name=NAME` (`systemd:0`, `systemd:web`
///    for short): a socket systemd passed to this process (transports/systemd.hpp);
///  - server "ssl", clients "ssl" and "tls": TLS, once register_tls_endpoints()
///    (transports/tls_endpoints.hpp, in the torsion_tls library) has run; before that,
///    these types are refused with an EndpointError that says so.
/// Other transports add theirs with register_server_endpoint / register_client_endpoint;
/// user code can register its own types the same way.
///
/// The description syntax (escaping, limits) is framework/endpoints.hpp's.

#include <concepts>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "framework/connect_protocol.hpp"
#include "framework/deferred.hpp"
#include "framework/endpoints.hpp"
#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"

namespace torsion {

/// Somewhere to listen. Made by server_from_string (or a transport directly); holds only
/// settings, so it may be kept and used to listen several times. Reactor thread only.
class ServerEndpoint {
 public:
  virtual ~ServerEndpoint();
  /// Starts listening; connections get protocols from `factory`, which must outlive the
  /// port and its connections. Throws std::system_error if the socket cannot be bound
  /// (the code says why, and the message names the endpoint); no callback runs then.
  std::shared_ptr<ListeningPort> listen(Factory& factory);
  /// As above, reporting a bind failure in `ec` (and returning null) instead of throwing.
  /// Implementations add `using ServerEndpoint::listen;` so both forms stay visible.
  virtual std::shared_ptr<ListeningPort> listen(Factory& factory, std::error_code& ec) = 0;
  /// A description that parses back to an equivalent endpoint (defaults written out).
  virtual std::string description() const = 0;
};

/// Somewhere to connect to. Made by client_from_string; holds only settings, so each
/// connect() is a new attempt. Reactor thread only.
class ClientEndpoint {
 public:
  virtual ~ClientEndpoint();
  /// Starts connecting; `factory` hears how it goes (started_connecting, then
  /// connection_made on a new protocol or client_connection_failed), from the loop only.
  /// `factory` must outlive the connector and its connection.
  virtual std::shared_ptr<Connector> connect(ClientFactory& factory) = 0;
  /// A description that parses back to an equivalent endpoint (defaults written out).
  virtual std::string description() const = 0;
};

/// Builds a server endpoint from a parsed description of its type. Throws EndpointError
/// (use EndpointDescription's getters, which do) for a bad or unknown parameter.
using ServerEndpointParser =
    std::function<std::unique_ptr<ServerEndpoint>(Reactor&, EndpointDescription&)>;
/// Builds a client endpoint from a parsed description of its type.
using ClientEndpointParser =
    std::function<std::unique_ptr<ClientEndpoint>(Reactor&, EndpointDescription&)>;

/// Adds (or replaces) the server parser for `type`. Thread-safe; meant for start-up.
/// Throws std::invalid_argument for an empty type or a type holding ':', '=' or '\'.
void register_server_endpoint(std::string type, ServerEndpointParser parser);
/// Adds (or replaces) the client parser for `type`. As register_server_endpoint.
void register_client_endpoint(std::string type, ClientEndpointParser parser);
/// Removes the server parser for `type` (built-in ones included), so that descriptions of
/// that type are refused from now on; false if there was none. Thread-safe.
bool unregister_server_endpoint(std::string_view type);
/// Removes the client parser for `type`. As unregister_server_endpoint.
bool unregister_client_endpoint(std::string_view type);
/// The server types known now, sorted ("tcp", ...).
std::vector<std::string> server_endpoint_types();
/// The client types known now, sorted.
std::vector<std::string> client_endpoint_types();

/// Parses `description` into a server endpoint, without binding anything yet. Throws
/// EndpointError naming the bad parameter and value (an unknown type names "type").
[[nodiscard]] std::unique_ptr<ServerEndpoint> server_from_string(Reactor& reactor,
                                                                 std::string_view description);

/// Parses `description` into a client endpoint, without connecting yet. Throws
/// EndpointError naming the bad parameter and value.
[[nodiscard]] std::unique_ptr<ClientEndpoint> client_from_string(Reactor& reactor,
                                                                 std::string_view description);

/// Connects through `endpoint` and fires (from the loop) with the connection as a Stream,
/// for Deferred chains and coroutines, whatever the transport:
/// `Stream s = co_await connect_stream(reactor, *client_from_string(reactor, "unix:@app"));`
/// Fails with ConnectionError (reason(): connection_refused, timed_out...). Cancelling it
/// stops the attempt (CancelledError); a connection that completes after the cancel is
/// closed at once. The endpoint is used during this call only.
[[nodiscard]] Deferred<Stream> connect_stream(Reactor& reactor, ClientEndpoint& endpoint,
                                StreamOptions options = {});

/// Twisted's connectProtocol: connects through `endpoint` (TCP, Unix, TLS, anything
/// client_from_string makes) with `protocol` as the connection's protocol, without a
/// ClientFactory. Fires from the loop once the protocol's connection_made has run, with
/// the protocol (valid until its connection_lost returns: hand out `guard`ed callbacks),
/// so a coroutine writes `P& p = co_await connect_protocol(reactor, endpoint, ...)`.
/// Fails with ConnectionError: the attempt's Reason (connection_refused, timed_out,
/// lookup_failed...), or the connection's if it ended before the Deferred fired.
/// Cancelling it stops the attempt (CancelledError). The protocol and the one-off factory
/// behind it live as long as the connection; the endpoint is used during this call only.
template <class P>
  requires std::derived_from<P, Protocol>
[[nodiscard]] Deferred<std::reference_wrapper<P>> connect_protocol(Reactor& reactor,
                                                                   ClientEndpoint& endpoint,
                                                                   std::unique_ptr<P> protocol) {
  return connect_protocol_with(
             reactor, [&](ClientFactory& factory) { return endpoint.connect(factory); },
             std::unique_ptr<Protocol>(std::move(protocol)))
      .add_callback([](Protocol* p) { return std::ref(static_cast<P&>(*p)); });
}

/// As above, for an endpoint description ("tcp:127.0.0.1:6379", "unix:@app",
/// "tls:example.com:443"...). Throws EndpointError for a bad description.
template <class P>
  requires std::derived_from<P, Protocol>
[[nodiscard]] Deferred<std::reference_wrapper<P>> connect_protocol(Reactor& reactor,
                                                                   std::string_view description,
                                                                   std::unique_ptr<P> protocol) {
  auto endpoint = client_from_string(reactor, description);
  return connect_protocol(reactor, *endpoint, std::move(protocol));
}

/// A function that connects the protocol it is given through `description`, each time it
/// is called, and returns connect_protocol_with's Deferred: what RelayFactory
/// (protocols/relay.hpp) takes, `RelayFactory proxy(protocol_connector(reactor,
/// "tcp:example.com:80"))`. Parses the description now (throws EndpointError); the
/// function keeps the endpoint and refers to `reactor`, so call it while the reactor lives.
std::function<Deferred<Protocol*>(std::unique_ptr<Protocol>)> protocol_connector(
    Reactor& reactor, std::string_view description);

}  // namespace torsion
