#include "framework/testing/datagram_network.hpp"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "framework/testing/detail/numeric_ip.hpp"
#include "framework/testing/detail/pump.hpp"

namespace torsion::testing {
namespace {

using detail::NumericIp;
using detail::parse_ip;

bool same_host(const NumericIp& a, const NumericIp& b) {
  return a.v6 == b.v6 && a.bytes == b.bytes;
}

void check_probability(double p, const char* what) {
  if (!(p >= 0 && p <= 1))
    throw std::invalid_argument(std::string("DatagramNetwork: ") + what +
                                " must be a probability in 0..1, got " + std::to_string(p));
}

}  // namespace

DatagramNetwork::DatagramNetwork(DatagramNetworkOptions options)
    : options_(std::move(options)), rng_state_(options_.seed) {
  check_probability(options_.loss, "loss");
  check_probability(options_.duplication, "duplication");
}

DatagramNetwork::~DatagramNetwork() = default;

// splitmix64, mapped to [0, 1): fully specified, so a seed means the same on every platform.
double DatagramNetwork::random() {
  std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

MemoryDatagramTransport& DatagramNetwork::bind(DatagramProtocol& protocol, const Address& host,
                                               bool reuse_address) {
  const auto ip = parse_ip(host);
  if (!ip)
    throw std::invalid_argument("DatagramNetwork::bind: " + host.to_string() +
                                " is not a numeric IPv4 or IPv6 address");
  auto in_use = [&](std::uint16_t port) {
    for (auto& e : endpoints_) {
      if (!e->listening() || e->host_.port() != port) continue;
      if (reuse_address && e->reuse_address_) continue;
      const auto other = parse_ip(e->host_);
      if (other->v6 != ip->v6) continue;
      if (same_host(*other, *ip) || other->unspecified() || ip->unspecified()) return true;
    }
    return false;
  };
  Address bound = host;
  if (host.port() == 0) {
    std::uint16_t port = 0;
    for (int tries = 0; tries < 28232 && port == 0; ++tries) {
      const std::uint16_t candidate = next_port_;
      next_port_ = next_port_ == 60999 ? 32768 : static_cast<std::uint16_t>(next_port_ + 1);
      if (!in_use(candidate)) port = candidate;
    }
    if (port == 0)
      throw std::system_error(std::make_error_code(std::errc::address_in_use),
                              "bind " + host.to_string() + ": no free port");
    bound = Address::ip(host.host(), port);
  } else if (in_use(host.port())) {
    throw std::system_error(std::make_error_code(std::errc::address_in_use),
                            "bind " + host.to_string());
  }
  auto endpoint = std::make_unique<MemoryDatagramTransport>(bound);
  endpoint->network_ = this;
  endpoint->reuse_address_ = reuse_address;
  MemoryDatagramTransport& ref = *endpoint;
  endpoints_.push_back(std::move(endpoint));
  ref.attach(protocol);
  return ref;
}

void DatagramNetwork::enqueue(MemoryDatagramTransport& sender, std::string_view data,
                              const Address& to) {
  // An endpoint bound to the wildcard address sends from the loopback address.
  Address from = sender.host_;
  if (parse_ip(from)->unspecified())
    from = Address::ip(from.family() == Address::Family::ipv6 ? "::1" : "127.0.0.1", from.port());
  flight_.push_back(InFlight{Datagram{std::string(data), std::move(from), to}, &sender, false});
}

bool DatagramNetwork::carry(InFlight item) {
  const Datagram& d = item.datagram;
  MemoryDatagramTransport& sender = *item.sender;
  if ((options_.drop_if && options_.drop_if(d)) ||
      (options_.loss > 0 && random() < options_.loss)) {
    ++lost_;
    return true;
  }
  if (!item.duplicate && options_.duplication > 0 && random() < options_.duplication)
    flight_.push_back(InFlight{d, item.sender, true});

  const NumericIp to = *parse_ip(d.to);  // checked by write()
  std::vector<MemoryDatagramTransport*> targets;
  if (to.broadcast() && !sender.broadcast_allowed()) {
    ++lost_;
    if (sender.listening() && sender.protocol_)
      sender.protocol_->error_received(Reason::from_os_error(
          std::error_code(EACCES, std::system_category()), "sending to a broadcast address"));
    return true;
  }
  MemoryDatagramTransport* unicast = nullptr;  // the best unicast match so far
  bool unicast_exact = false;
  for (auto& e : endpoints_) {
    if (!e->listening() || e->host_.port() != d.to.port()) continue;
    const NumericIp host = *parse_ip(e->host_);
    if (host.v6 != to.v6) continue;
    if (to.broadcast()) {
      if (host.unspecified()) targets.push_back(e.get());
    } else if (to.multicast()) {
      if (!host.unspecified() && !same_host(host, to)) continue;
      if (e.get() == &sender && !sender.multicast_loopback()) continue;
      for (const auto& group : e->groups()) {
        const auto g = parse_ip(Address::ip(group, 0));
        if (g && same_host(*g, to)) {
          targets.push_back(e.get());
          break;
        }
      }
    } else if (same_host(host, to) || host.unspecified()) {
      // Later endpoints were bound later: they win among equals.
      const bool exact = same_host(host, to);
      if (!unicast || exact || !unicast_exact) {
        unicast = e.get();
        unicast_exact = exact;
      }
    }
  }
  if (unicast) targets.push_back(unicast);
  if (targets.empty()) {
    ++lost_;
    // ICMP port unreachable reaches the sender only if it is connected there.
    if (sender.listening() && sender.protocol_ && sender.get_peer() == d.to)
      sender.protocol_->connection_refused();
    return true;
  }
  for (MemoryDatagramTransport* t : targets) {
    const std::size_t dropped = t->dropped();
    t->arrive(d.data, d.from);
    if (t->dropped() == dropped) ++delivered_;
  }
  return true;
}

bool DatagramNetwork::step() {
  bool moved = false;
  // By index: callbacks may bind new endpoints.
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    MemoryDatagramTransport& e = *endpoints_[i];
    if (!e.listening() && !e.closed()) {
      e.close();
      moved = true;
    }
  }
  for (std::size_t i = 0; i < endpoints_.size(); ++i)
    moved = endpoints_[i]->deliver_one_held() || moved;
  if (!flight_.empty()) {
    std::size_t index = 0;
    if (options_.reorder && flight_.size() > 1)
      index = static_cast<std::size_t>(random() * static_cast<double>(flight_.size()));
    InFlight item = std::move(flight_[index]);
    flight_.erase(flight_.begin() + static_cast<std::ptrdiff_t>(index));
    moved = carry(std::move(item)) || moved;
  }
  return moved;
}

bool DatagramNetwork::pump() {
  return detail::pump_steps([this] { return step(); }, options_.max_steps,
                            "DatagramNetwork::pump", "endpoints that talk forever?");
}

}  // namespace torsion::testing
