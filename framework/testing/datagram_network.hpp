#pragma once
/// \file
/// DatagramNetwork: datagram endpoints connected in memory, with a pump that carries
/// their datagrams, optionally losing, duplicating and reordering them from a seed, so
/// that UDP protocols (retries, time-outs, de-duplication) are tested deterministically.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "framework/address.hpp"
#include "framework/datagram.hpp"
#include "framework/testing/memory_datagram_transport.hpp"

namespace torsion::testing {

/// How a DatagramNetwork treats datagrams in flight.
struct DatagramNetworkOptions {
  /// Seed of the generator behind loss, duplication and reorder (the same seed gives the
  /// same fate to the same traffic on every platform). Default 0.
  std::uint32_t seed = 0;
  /// Probability (0..1) that a datagram is lost.
  double loss = 0;
  /// Probability (0..1) that a datagram is delivered twice (the copy travels later).
  double duplication = 0;
  /// Deliver the datagrams in flight in a random order rather than in sending order.
  bool reorder = false;
  /// Loses every datagram for which it returns true (before the random loss), for
  /// deterministic scenarios such as "the first reply is lost".
  std::function<bool(const Datagram&)> drop_if;
  /// pump() throws std::runtime_error after this many busy steps (endpoints that talk
  /// forever).
  std::size_t max_steps = 1'000'000;
};

/// An in-memory network of MemoryDatagramTransports (bind() creates them). Sending only
/// queues a datagram; the test calls pump() (or step()) to carry datagrams to the
/// endpoints bound at their destination, so protocol events never run inside a write.
///
/// Delivery follows UDP on one host:
///  - an endpoint receives what is sent to its address (an endpoint bound to 0.0.0.0 or
///    :: receives what is sent to any address of its family at its port); a connected
///    endpoint only what comes from its peer; when endpoints share an address
///    (reuse_address) a unicast datagram goes to one of them: an exact address match
///    before a wildcard, else the most recently bound;
///  - a datagram to an address where nothing listens is lost; if the sender is connected
///    to that address it hears connection_refused() (ICMP port unreachable);
///  - a datagram to a multicast group reaches every endpoint at that port, bound to the
///    wildcard address or to the group, that joined the group (the sender too, unless it
///    turned multicast loopback off); one to 255.255.255.255 reaches every endpoint bound
///    to 0.0.0.0 at that port if the sender allowed broadcast, and otherwise the sender
///    hears error_received (EACCES);
///  - an endpoint whose reading is paused queues arrivals up to its receive buffer and
///    drops the rest; they are delivered after resume_reading, by later steps;
///  - an endpoint that stopped listening hears stopped_listening() from the next step.
/// Exceptions thrown by the protocols propagate out of step() and pump().
///
/// The network owns its transports; protocols are the test's and must outlive the
/// network's use of them. Destroying the network drops the endpoints without calling
/// back. Not copyable or movable; not thread-safe.
class DatagramNetwork {
 public:
  /// Throws std::invalid_argument for a probability outside 0..1.
  explicit DatagramNetwork(DatagramNetworkOptions options = {});
  DatagramNetwork(const DatagramNetwork&) = delete;
  DatagramNetwork& operator=(const DatagramNetwork&) = delete;
  ~DatagramNetwork();

  /// Creates an endpoint bound to `host` (numeric IPv4 or IPv6; port 0 picks a free port
  /// from 32768 up) and attaches `protocol`: started_listening runs now. Throws
  /// std::system_error (address in use) if a listening endpoint of the same family has
  /// that port on the same or a wildcard address, unless both were bound with
  /// `reuse_address` (SO_REUSEADDR: several multicast listeners on one port), and
  /// std::invalid_argument for a non-numeric address.
  MemoryDatagramTransport& bind(DatagramProtocol& protocol, const Address& host,
                                bool reuse_address = false);

  /// One step: delivers pending stopped_listening events, one held-back datagram per
  /// endpoint that is reading again, then the fate of one datagram in flight. Returns
  /// whether anything happened.
  bool step();
  /// Steps until nothing happens; returns whether anything did. Throws
  /// std::runtime_error after options.max_steps busy steps.
  bool pump();

  /// Datagrams sent and not yet delivered or lost.
  std::size_t in_flight() const noexcept { return flight_.size(); }
  /// Datagrams handed to a protocol or queued at a paused endpoint (each copy counts).
  std::size_t delivered() const noexcept { return delivered_; }
  /// Datagrams lost on the way (drop_if, random loss, nobody listening).
  std::size_t lost() const noexcept { return lost_; }

 private:
  friend class MemoryDatagramTransport;

  struct InFlight {
    Datagram datagram;
    MemoryDatagramTransport* sender;
    bool duplicate;
  };

  void enqueue(MemoryDatagramTransport& sender, std::string_view data, const Address& to);
  bool carry(InFlight item);
  double random();

  DatagramNetworkOptions options_;
  std::uint64_t rng_state_;
  std::deque<InFlight> flight_;
  std::vector<std::unique_ptr<MemoryDatagramTransport>> endpoints_;
  std::uint16_t next_port_ = 32768;
  std::size_t delivered_ = 0;
  std::size_t lost_ = 0;
};

}  // namespace torsion::testing
