#include "framework/connect_protocol.hpp"

#include <stdexcept>
#include <utility>

#include "framework/stream.hpp"

namespace torsion {

namespace {

// connect_protocol's one-off factory: owned by its connector and, once the protocol is
// built, by the protocol too (keep_alive), so it lives as long as the attempt and the
// connection, and goes with them (also when ~Reactor drops a pending attempt).
class ProtocolConnectFactory final : public ClientFactory,
                                     public std::enable_shared_from_this<ProtocolConnectFactory> {
 public:
  ProtocolConnectFactory(Reactor& reactor, std::unique_ptr<Protocol> protocol)
      : reactor_(reactor), protocol_(std::move(protocol)) {}

  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    if (!protocol_) return nullptr;  // a second attempt (connect() again): refused
    auto protocol = std::move(protocol_);
    Protocol* raw = protocol.get();
    // Fire from the loop, after connection_made (which the transport runs right after
    // this returns), and only while the protocol exists (else client_connection_lost
    // has failed it).
    reactor_.call_soon(raw->guard([raw, result = result_]() mutable {
      // A connection already closing (lose or abort in connection_made) is left to
      // client_connection_lost, which fails the Deferred with its Reason.
      if (!result.called() && raw->has_transport() && raw->transport().connected())
        result.callback(raw);
    }));
    protocol->keep_alive(shared_from_this());
    return protocol;
  }

  void client_connection_failed(Connector&, const Reason& reason) override {
    reactor_.call_soon([result = result_, reason]() mutable {
      if (!result.called()) result.errback(ConnectionError(reason));
    });
  }

  void client_connection_lost(Connector&, const Reason& reason) override {
    if (!result_.called()) result_.errback(ConnectionError(reason));
  }

  std::weak_ptr<Connector> connector_;
  Deferred<Protocol*> result_;

 private:
  Reactor& reactor_;
  std::unique_ptr<Protocol> protocol_;
};

}  // namespace

Deferred<Protocol*> connect_protocol_with(
    Reactor& reactor, const std::function<std::shared_ptr<Connector>(ClientFactory&)>& connect,
    std::unique_ptr<Protocol> protocol) {
  if (!protocol) throw std::invalid_argument("connect_protocol: null protocol");
  auto factory = std::make_shared<ProtocolConnectFactory>(reactor, std::move(protocol));
  std::weak_ptr<ProtocolConnectFactory> weak = factory;
  factory->result_ = Deferred<Protocol*>([weak](Deferred<Protocol*>&) {
    if (auto f = weak.lock())
      if (auto connector = f->connector_.lock()) connector->disconnect();
  });
  Deferred<Protocol*> result = factory->result_;
  auto connector = connect(*factory);  // may have failed already (reported from the loop)
  if (!connector) throw std::invalid_argument("connect_protocol: no connector was returned");
  connector->keep_alive(factory);
  factory->connector_ = connector;
  return result;
}

}  // namespace torsion
