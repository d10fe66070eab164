#pragma once
/// \file
/// listen_stream: a coroutine server (asyncio's start_server). Every accepted connection
/// runs `handler(Stream)`, a coroutine, as its own Task:
///
///     auto server = listen_stream(reactor, "tcp:8000:interface=127.0.0.1",
///                                 [greeting](Stream s) -> Task<void> {
///                                   s.write(greeting);
///                                   while (auto line = co_await s.read_line())
///                                     s.write(*line + "\n");
///                                 });
///
/// What it promises:
///  - Each handler coroutine runs in a frame that owns its own copy of `handler`, so the
///    lambda's captures stay valid for the whole coroutine, however long it lasts.
///  - At most ListenStreamOptions::max_handlers handlers run at once. Connections
///    accepted beyond that wait, their reading paused, for a handler to finish (first
///    come, first served); at most max_waiting wait, and connections beyond those are
///    refused (closed at once, before any byte is read). Memory stays bounded.
///  - A handler's exception is logged (level error) and ends only its connection; when
///    a handler ends, its Stream closes the connection (unless it was moved elsewhere).
///    A ConnectionError (the peer reset or went away mid-read or mid-drain) is no server
///    error: it is logged at level info.
///  - The server keeps itself alive while it listens or handlers run, whether or not the
///    caller keeps the returned handle. close() stops it; the reactor's graceful shutdown
///    (Reactor::shutdown, SIGINT/SIGTERM) does the same in its `during` phase and waits
///    for the handlers to end (within the shutdown grace period).
/// Reactor thread only.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "framework/address.hpp"
#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "framework/task.hpp"
#include "transports/endpoints.hpp"

namespace torsion {

/// Limits and tuning for listen_stream.
struct ListenStreamOptions {
  /// Handlers running at once (>= 1).
  std::size_t max_handlers = 1024;
  /// Accepted connections that may wait for a handler; more are refused.
  std::size_t max_waiting = 64;
  /// Each connection's Stream options (its read buffer limit).
  StreamOptions stream = {};
};

/// The handle listen_stream returns; see the file comment. Dropping it does not stop
/// the server.
class StreamServer {
 public:
  virtual ~StreamServer();
  /// The bound address (for port 0, the port the kernel picked).
  virtual Address get_host() const = 0;
  /// The bound port.
  std::uint16_t port() const { return get_host().port(); }
  /// Handlers running now.
  virtual std::size_t handlers() const = 0;
  /// Accepted connections waiting for a handler now.
  virtual std::size_t waiting() const = 0;
  /// Connections refused so far because max_handlers + max_waiting were busy.
  virtual std::uint64_t refused() const = 0;
  /// Stops accepting; running handlers go on. Idempotent.
  virtual void stop_listening() = 0;
  /// Stops accepting, closes the waiting connections and cancels every handler (its
  /// awaited read or write throws CancelledError); fires once every handler has ended.
  /// May be called again (each Deferred fires then).
  [[nodiscard]] virtual Deferred<void> close() = 0;
};

/// The handler type listen_stream stores (a coroutine function taking the Stream).
using StreamHandler = std::function<Task<void>(Stream)>;

/// listen_stream with the handler already type-erased (see the template below).
[[nodiscard]] std::shared_ptr<StreamServer> listen_stream_with(Reactor& reactor,
                                                               ServerEndpoint& endpoint,
                                                               StreamHandler handler,
                                                               ListenStreamOptions options = {});

/// Listens on `endpoint` and runs `handler(Stream)` (a function returning Task<void>)
/// for every connection; see the file comment. Throws std::system_error if the endpoint
/// cannot listen, std::invalid_argument for max_handlers 0. The endpoint is used during
/// this call only.
template <class F>
  requires std::is_invocable_r_v<Task<void>, F&, Stream>
[[nodiscard]] std::shared_ptr<StreamServer> listen_stream(Reactor& reactor, ServerEndpoint& endpoint,
                                                          F handler, ListenStreamOptions options = {}) {
  return listen_stream_with(reactor, endpoint,
                            StreamHandler(detail::coroutine_owning(std::move(handler))), options);
}

/// As above, from an endpoint description ("tcp:0:interface=127.0.0.1", "unix:@name"...);
/// throws EndpointError for a bad description.
template <class F>
  requires std::is_invocable_r_v<Task<void>, F&, Stream>
[[nodiscard]] std::shared_ptr<StreamServer> listen_stream(Reactor& reactor, std::string_view description,
                                                          F handler, ListenStreamOptions options = {}) {
  auto endpoint = server_from_string(reactor, description);
  return listen_stream(reactor, *endpoint, std::move(handler), options);
}

}  // namespace torsion
