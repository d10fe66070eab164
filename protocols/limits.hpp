#pragma once
/// \file
/// Connection limits: in total, and per peer address.

#include <cstddef>
#include <string>
#include <unordered_map>

#include "protocols/wrapping.hpp"

namespace torsion {

/// Accepts at most `max_connections` live connections at a time; further connections
/// are refused (build_protocol returns null: the transport closes them at once and the
/// wrapped factory is not asked). A connection counts from build_protocol until its
/// protocol is destroyed (after connection_lost). Twisted's LimitTotalConnectionsFactory.
class ConnectionLimitFactory : public WrappingFactory {
 public:
  /// `wrapped` builds the protocols (and must outlive this factory's connections).
  ConnectionLimitFactory(Factory& wrapped, std::size_t max_connections);
  /// The limit in force.
  std::size_t max_connections() const noexcept { return max_; }
  /// Changes the limit; live connections above it are not closed.
  void set_max_connections(std::size_t max_connections) noexcept { max_ = max_connections; }

 protected:
  bool allow(const Address& peer) override;

 private:
  std::size_t max_;
};

/// Accepts at most `max_per_peer` live connections from each peer host (the address
/// without its port; a Unix socket path counts as one host). Further connections from
/// that host are refused as with ConnectionLimitFactory. Twisted's LimitConnectionsByPeer.
class PeerConnectionLimitFactory : public WrappingFactory {
 public:
  /// `wrapped` builds the protocols (and must outlive this factory's connections).
  PeerConnectionLimitFactory(Factory& wrapped, std::size_t max_per_peer);
  /// The limit in force.
  std::size_t max_per_peer() const noexcept { return max_; }
  /// Live connections from `host`.
  std::size_t connections_from(const std::string& host) const;
  /// How many distinct hosts have live connections (the map holds no other entries).
  std::size_t peer_count() const noexcept { return counts_.size(); }

 protected:
  bool allow(const Address& peer) override;
  void registered(ProtocolWrapper& wrapper) override;
  void unregistered(ProtocolWrapper& wrapper) override;

 private:
  std::size_t max_;
  std::unordered_map<std::string, std::size_t> counts_;
};

}  // namespace torsion
