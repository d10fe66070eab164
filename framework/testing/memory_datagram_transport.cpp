#include "framework/testing/memory_datagram_transport.hpp"

#include <stdexcept>
#include <utility>

#include "framework/testing/datagram_network.hpp"
#include "framework/testing/detail/numeric_ip.hpp"

namespace torsion::testing {
namespace {

constexpr std::size_t kMaxUdp4 = 65507;  // 65535 - 20 (IPv4 header) - 8 (UDP header)
constexpr std::size_t kMaxUdp6 = 65527;  // 65535 - 8 (the IPv6 header is not counted)

detail::NumericIp require_numeric(const Address& a, const char* what) {
  auto ip = detail::parse_ip(a);
  if (!ip)
    throw std::invalid_argument(std::string(what) + ": " + a.to_string() +
                                " is not a numeric IPv4 or IPv6 address");
  return *ip;
}

}  // namespace

MemoryDatagramTransport::MemoryDatagramTransport(Address host) : host_(std::move(host)) {
  max_size_ = require_numeric(host_, "MemoryDatagramTransport").v6 ? kMaxUdp6 : kMaxUdp4;
}

MemoryDatagramTransport::~MemoryDatagramTransport() = default;

void MemoryDatagramTransport::attach(DatagramProtocol& protocol) {
  if (protocol_) throw std::logic_error("MemoryDatagramTransport::attach: already attached");
  protocol_ = &protocol;
  protocol.make_connection(*this);
}

DatagramProtocol& MemoryDatagramTransport::protocol(const char* what) const {
  if (!protocol_)
    throw std::logic_error(std::string("MemoryDatagramTransport::") + what +
                           ": attach() a protocol first");
  return *protocol_;
}

std::vector<Datagram> MemoryDatagramTransport::take() {
  return std::exchange(sent_, std::vector<Datagram>());
}

void MemoryDatagramTransport::connect(const Address& peer) {
  const auto ip = require_numeric(peer, "connect");
  if (ip.v6 != (host_.family() == Address::Family::ipv6))
    throw std::invalid_argument("connect: " + peer.to_string() + " is not reachable from " +
                                host_.to_string() + " (another address family)");
  peer_ = peer;
}

void MemoryDatagramTransport::send_datagram(std::string_view data, const Address* to) {
  Address dest;
  if (!to) {
    if (peer_.family() == Address::Family::none)
      throw std::logic_error("write(data): the endpoint is not connected; use write(data, to)");
    dest = peer_;
  } else {
    const auto ip = require_numeric(*to, "write");
    if (ip.v6 != (host_.family() == Address::Family::ipv6))
      throw std::invalid_argument("write: " + to->to_string() + " is not reachable from " +
                                  host_.to_string() + " (another address family)");
    if (peer_.family() != Address::Family::none && *to != peer_)
      throw std::logic_error("write: the endpoint is connected to " + peer_.to_string() + ", not " +
                             to->to_string());
    dest = *to;
  }
  if (data.size() > max_size_)
    throw std::length_error("write: a datagram of " + std::to_string(data.size()) +
                            " bytes exceeds the maximum of " + std::to_string(max_size_));
  if (!listening_) return;  // dropped after stop_listening
  sent_.push_back(Datagram{std::string(data), host_, dest});
  if (network_) network_->enqueue(*this, data, dest);
}

bool MemoryDatagramTransport::accepts_from(const Address& from) const {
  return peer_.family() == Address::Family::none || from == peer_;
}

bool MemoryDatagramTransport::arrive(std::string_view data, const Address& from) {
  if (!listening_ || closed_ || !protocol_) return false;
  if (!accepts_from(from)) {
    ++dropped_;
    return false;
  }
  if (paused_ || !held_.empty()) {  // behind what is held, to keep the order
    if (held_bytes_ + data.size() > receive_buffer_) {
      ++dropped_;  // the kernel's receive buffer is full
      return false;
    }
    held_.push_back(Datagram{std::string(data), from, host_});
    held_bytes_ += data.size();
    return false;
  }
  protocol_->datagram_received(data, from);
  return true;
}

void MemoryDatagramTransport::receive(std::string_view data, const Address& from) {
  protocol("receive");
  deliver_held();
  arrive(data, from);
}

bool MemoryDatagramTransport::deliver_one_held() {
  if (held_.empty() || paused_ || !listening_ || closed_) return false;
  Datagram d = std::move(held_.front());
  held_.pop_front();
  held_bytes_ -= d.data.size();
  if (!accepts_from(d.from)) {  // connected to another peer after it arrived
    ++dropped_;
    return true;
  }
  protocol_->datagram_received(d.data, d.from);
  return true;
}

std::size_t MemoryDatagramTransport::deliver_held() {
  std::size_t n = 0;
  while (deliver_one_held()) ++n;
  return n;
}

void MemoryDatagramTransport::refuse() {
  DatagramProtocol& p = protocol("refuse");
  if (peer_.family() == Address::Family::none)
    throw std::logic_error(
        "MemoryDatagramTransport::refuse: refusals reach connected endpoints only; connect() "
        "first");
  p.connection_refused();
}

void MemoryDatagramTransport::fail(const Reason& reason) {
  protocol("fail").error_received(reason);
}

void MemoryDatagramTransport::close() {
  if (closed_) return;
  closed_ = true;
  listening_ = false;
  held_.clear();
  held_bytes_ = 0;
  if (protocol_) protocol_->end_connection();
}

void MemoryDatagramTransport::join_group(const std::string& group, const std::string& interface,
                                         std::error_code& ec) {
  (void)interface;
  const Address a = Address::ip(group, 0);
  const auto ip = detail::parse_ip(a);
  if (!ip || !ip->multicast() || ip->v6 != (host_.family() == Address::Family::ipv6)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return;
  }
  ec.clear();
  groups_.insert(group);
}

void MemoryDatagramTransport::leave_group(const std::string& group, const std::string& interface,
                                          std::error_code& ec) {
  (void)interface;
  if (groups_.erase(group) == 0) {
    ec = std::make_error_code(std::errc::address_not_available);  // as Linux says
    return;
  }
  ec.clear();
}

void MemoryDatagramTransport::set_multicast_ttl(int ttl, std::error_code& ec) {
  if (ttl < 0 || ttl > 255) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return;
  }
  ec.clear();
  ttl_ = ttl;
}

void MemoryDatagramTransport::set_multicast_loopback(bool enabled, std::error_code& ec) {
  ec.clear();
  multicast_loopback_ = enabled;
}

void MemoryDatagramTransport::set_broadcast_allowed(bool enabled, std::error_code& ec) {
  ec.clear();
  broadcast_ = enabled;
}

}  // namespace torsion::testing
