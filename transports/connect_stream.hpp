#pragma once
/// \file
/// connect_stream: a TCP connection as a Stream, for Deferred chains and coroutines.

#include <string>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "transports/tcp.hpp"

namespace torsion {

/// Connects to `host`:`port` with connect_tcp and fires with the connection's Stream
/// (from the reactor loop), or fails with ConnectionError (reason(): connection_refused,
/// timed_out, lookup_failed...). `co_await connect_stream(reactor, "127.0.0.1", port)`.
/// Cancelling it stops the attempt (CancelledError); a connection that completes after
/// the cancel is closed at once. Throws std::invalid_argument as connect_tcp does.
[[nodiscard]] Deferred<Stream> connect_stream(Reactor& reactor, std::string host, int port,
                                const TcpConnectOptions& options = {},
                                StreamOptions stream_options = {});

}  // namespace torsion
