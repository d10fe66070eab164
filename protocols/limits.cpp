#include "protocols/limits.hpp"

namespace torsion {

ConnectionLimitFactory::ConnectionLimitFactory(Factory& wrapped, std::size_t max_connections)
    : WrappingFactory(wrapped), max_(max_connections) {}

bool ConnectionLimitFactory::allow(const Address& peer) {
  (void)peer;
  return connection_count() < max_;
}

PeerConnectionLimitFactory::PeerConnectionLimitFactory(Factory& wrapped, std::size_t max_per_peer)
    : WrappingFactory(wrapped), max_(max_per_peer) {}

std::size_t PeerConnectionLimitFactory::connections_from(const std::string& host) const {
  const auto it = counts_.find(host);
  return it == counts_.end() ? 0 : it->second;
}

bool PeerConnectionLimitFactory::allow(const Address& peer) {
  return connections_from(peer.host()) < max_;
}

void PeerConnectionLimitFactory::registered(ProtocolWrapper& wrapper) {
  ++counts_[wrapper.accepted_peer().host()];
}

void PeerConnectionLimitFactory::unregistered(ProtocolWrapper& wrapper) {
  const auto it = counts_.find(wrapper.accepted_peer().host());
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

}  // namespace torsion
