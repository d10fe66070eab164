#pragma once
/// \file
/// MemoryDatagramTransport: an in-memory DatagramTransport that records what a datagram
/// protocol sends and lets the test deliver datagrams, refusals and errors.

#include <cstddef>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "framework/address.hpp"
#include "framework/datagram.hpp"
#include "framework/reason.hpp"

namespace torsion::testing {

class DatagramNetwork;

/// One datagram as the in-memory transports see it.
struct Datagram {
  std::string data;  ///< the payload
  Address from;      ///< the sender's bound address
  Address to;        ///< where it was sent
  friend bool operator==(const Datagram&, const Datagram&) = default;
};

/// A DatagramTransport for unit-testing datagram protocols without sockets, used alone
/// (like StringTransport: the test feeds it and reads what was sent) or as an endpoint of
/// a DatagramNetwork (which carries datagrams between endpoints in its pump()).
///
/// It checks writes as a UDP endpoint does: a payload over max_datagram_size() throws
/// std::length_error, a destination that is not a numeric address of the endpoint's
/// family throws std::invalid_argument, write(data) without connect() or write(data, to)
/// to another address than the connected peer throws std::logic_error; writes after
/// stop_listening() are dropped. Every accepted write is recorded in sent(), whole; it is
/// "handed to the kernel" at once, so buffer_size() is 0.
///
/// Used alone, nothing happens by itself: receive() delivers a datagram now (held back
/// while reading is paused), refuse() and fail() deliver connection_refused and
/// error_received now, and close() delivers stopped_listening. Exceptions thrown by the
/// protocol propagate to the test. Multicast and broadcast settings are recorded and
/// succeed (groups(), multicast_ttl(), ...). Not thread-safe.
class MemoryDatagramTransport final : public DatagramTransport {
 public:
  /// An endpoint bound to `host` (a numeric IPv4 or IPv6 address; default 127.0.0.1:9000).
  /// Throws std::invalid_argument for another kind of address.
  explicit MemoryDatagramTransport(Address host = Address::ip("127.0.0.1", 9000));
  ~MemoryDatagramTransport() override;
  MemoryDatagramTransport(const MemoryDatagramTransport&) = delete;
  MemoryDatagramTransport& operator=(const MemoryDatagramTransport&) = delete;

  /// Attaches `protocol` (make_connection): started_listening runs now. The protocol must
  /// outlive the transport's use of it. Throws std::logic_error if one is attached already.
  void attach(DatagramProtocol& protocol);

  /// Everything sent so far, in order.
  const std::vector<Datagram>& sent() const noexcept { return sent_; }
  /// Returns sent() and clears it.
  std::vector<Datagram> take();
  /// Forgets what was sent.
  void clear() noexcept { sent_.clear(); }

  /// Delivers one datagram from `from`, now, as datagram_received. While reading is
  /// paused it is queued (up to receive_buffer() bytes, then dropped as the kernel does)
  /// and delivered by deliver_held() after resume_reading. Ignored when not listening,
  /// or when connected to another peer than `from` (counted in dropped()). Throws
  /// std::logic_error before attach().
  void receive(std::string_view data, const Address& from);
  /// Delivers the datagrams held back while reading was paused, in order, unless reading
  /// is (again) paused. Returns how many were delivered.
  std::size_t deliver_held();
  /// Datagrams held back while reading is paused.
  std::size_t held_count() const noexcept { return held_.size(); }
  /// Datagrams dropped on arrival: receive buffer full, or from a peer other than the
  /// connected one.
  std::size_t dropped() const noexcept { return dropped_; }
  /// Bytes of held-back datagrams beyond which arrivals are dropped (default 212992, the
  /// usual Linux receive buffer).
  std::size_t receive_buffer() const noexcept { return receive_buffer_; }
  /// Sets receive_buffer().
  void set_receive_buffer(std::size_t bytes) { receive_buffer_ = bytes; }

  /// Delivers connection_refused() now, as an ICMP port unreachable would. Throws
  /// std::logic_error on an endpoint that is not connected (the kernel reports refusals
  /// only to connected UDP sockets) or before attach().
  void refuse();
  /// Delivers error_received(reason) now. Throws std::logic_error before attach().
  void fail(const Reason& reason);
  /// Delivers stopped_listening() now, once (later calls do nothing); stops listening if
  /// stop_listening() was not called (as when the endpoint fails for good).
  void close();
  /// True once close() has delivered stopped_listening.
  bool closed() const noexcept { return closed_; }

  /// Sets max_datagram_size() (default 65507 for IPv4, 65527 for IPv6), to test a
  /// protocol's handling of a smaller path limit.
  void set_max_datagram_size(std::size_t size) { max_size_ = size; }

  /// Reading is paused (pause_reading()).
  bool reading_paused() const noexcept { return paused_; }
  /// Multicast groups joined and not left.
  const std::set<std::string>& groups() const noexcept { return groups_; }
  /// The multicast TTL last set (default 1).
  int multicast_ttl() const noexcept { return ttl_; }
  /// The multicast loopback setting (default true, as Linux).
  bool multicast_loopback() const noexcept { return multicast_loopback_; }
  /// Whether sending to broadcast addresses is allowed (default false).
  bool broadcast_allowed() const noexcept { return broadcast_; }

  // ListeningPort
  Address get_host() const override { return host_; }
  void stop_listening() override { listening_ = false; }
  bool listening() const override { return listening_; }

  // DatagramTransport
  void connect(const Address& peer) override;
  Address get_peer() const override { return peer_; }
  std::size_t max_datagram_size() const override { return max_size_; }
  std::size_t buffer_size() const override { return 0; }
  void pause_reading() override { paused_ = true; }
  void resume_reading() override { paused_ = false; }
  /// Multicast and broadcast settings: recorded and reported as done (see groups() and
  /// the accessors above).
  using DatagramTransport::join_group;
  using DatagramTransport::leave_group;
  using DatagramTransport::set_broadcast_allowed;
  using DatagramTransport::set_multicast_loopback;
  using DatagramTransport::set_multicast_ttl;
  void join_group(const std::string& group, const std::string& interface,
                  std::error_code& ec) override;
  void leave_group(const std::string& group, const std::string& interface,
                   std::error_code& ec) override;
  void set_multicast_ttl(int ttl, std::error_code& ec) override;
  void set_multicast_loopback(bool enabled, std::error_code& ec) override;
  void set_broadcast_allowed(bool enabled, std::error_code& ec) override;

 protected:
  void send_datagram(std::string_view data, const Address* to) override;

 private:
  friend class DatagramNetwork;

  // Hands a datagram to the protocol, or holds it back / drops it (for receive and the
  // network). Returns whether datagram_received ran.
  bool arrive(std::string_view data, const Address& from);
  // Delivers the oldest held-back datagram if reading; returns whether one was taken.
  bool deliver_one_held();
  bool accepts_from(const Address& from) const;
  DatagramProtocol& protocol(const char* what) const;

  Address host_;
  Address peer_;
  DatagramProtocol* protocol_ = nullptr;
  DatagramNetwork* network_ = nullptr;
  std::vector<Datagram> sent_;
  std::deque<Datagram> held_;
  std::size_t held_bytes_ = 0;
  std::size_t receive_buffer_ = 212992;
  std::size_t dropped_ = 0;
  std::size_t max_size_;
  std::set<std::string> groups_;
  int ttl_ = 1;
  bool multicast_loopback_ = true;
  bool broadcast_ = false;
  bool paused_ = false;
  bool listening_ = true;
  bool closed_ = false;
  bool reuse_address_ = false;  // set by DatagramNetwork::bind
};

}  // namespace torsion::testing
