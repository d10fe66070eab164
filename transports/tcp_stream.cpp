#include "transports/tcp_stream.hpp"

#include <memory>
#include <utility>

namespace torsion {
namespace {

class StreamConnectFactory;

// A StreamProtocol that owns the factory that built it. The ready handler cannot own it:
// StreamProtocol drops the handler once it has fired, while the connector still calls
// the factory's client_connection_lost after the protocol's connection_lost; the
// protocol itself is destroyed only after that.
class OwningStreamProtocol final : public StreamProtocol {
 public:
  OwningStreamProtocol(Reactor& reactor, Ready on_ready, StreamOptions options,
                       std::shared_ptr<StreamConnectFactory> factory)
      : StreamProtocol(reactor, std::move(on_ready), options), factory_(std::move(factory)) {}

 private:
  std::shared_ptr<StreamConnectFactory> factory_;
};

// Lives until the attempt fails or, once connected, as long as the protocol (which owns
// it): connect_tcp requires the factory to outlive the connection.
class StreamConnectFactory final : public ClientFactory {
 public:
  StreamConnectFactory(Reactor& reactor, StreamOptions options)
      : reactor_(reactor), options_(options) {}

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    Deferred<Stream> result = result_;
    return std::make_unique<OwningStreamProtocol>(
        reactor_,
        [result](Stream stream) mutable {
          if (!result.called()) result.callback(std::move(stream));
          // else: cancelled meanwhile; dropping the stream closes the connection
        },
        options_, std::move(self_));
  }

  void client_connection_failed(Connector&, const Reason& reason) override {
    auto keep = std::move(self_);
    Deferred<Stream> result = result_;
    // Fire from the loop, not from inside the connector's callback.
    reactor_.call_soon([keep, result, reason]() mutable {
      if (!result.called()) result.errback(ConnectionError(reason));
    });
  }

  std::shared_ptr<StreamConnectFactory> self_;
  std::shared_ptr<Connector> connector_;
  Deferred<Stream> result_;

 private:
  Reactor& reactor_;
  StreamOptions options_;
};

}  // namespace

Deferred<Stream> connect_stream(Reactor& reactor, std::string host, int port,
                                const TcpConnectOptions& options, StreamOptions stream_options) {
  auto factory = std::make_shared<StreamConnectFactory>(reactor, stream_options);
  std::weak_ptr<StreamConnectFactory> weak = factory;
  factory->result_ = Deferred<Stream>([weak](Deferred<Stream>&) {
    if (auto f = weak.lock())
      if (f->connector_) f->connector_->disconnect();
  });
  factory->self_ = factory;
  Deferred<Stream> result = factory->result_;
  try {
    factory->connector_ = connect_tcp(reactor, std::move(host), port, *factory, options);
  } catch (...) {
    factory->self_.reset();
    throw;
  }
  return result;
}

}  // namespace torsion
