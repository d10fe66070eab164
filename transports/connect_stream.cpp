#include "transports/connect_stream.hpp"

#include <utility>

namespace torsion {

Deferred<Stream> connect_stream(Reactor& reactor, std::string host, int port,
                                const TcpConnectOptions& options, StreamOptions stream_options) {
  return connect_stream_with(
      reactor,
      [&](ClientFactory& factory) {
        return connect_tcp(reactor, std::move(host), port, factory, options);
      },
      stream_options);
}

}  // namespace torsion
