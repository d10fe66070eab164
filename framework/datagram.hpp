#pragma once
/// \file
/// DatagramProtocol and DatagramTransport: message-oriented endpoints (UDP, or an
/// in-memory datagram transport in tests). Nothing here names a concrete transport.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "framework/address.hpp"
#include "framework/listening_port.hpp"
#include "framework/reason.hpp"

namespace torsion {

class DatagramTransport;

/// Handles the datagrams of one endpoint. Subclass it and override the events you need.
/// The protocol is the user's: it must outlive the transport it is attached to (or at
/// least stay alive until stopped_listening() returns). Every event comes from the
/// reactor loop, one at a time, never from inside a DatagramTransport call.
class DatagramProtocol {
 public:
  virtual ~DatagramProtocol() = default;

  /// The endpoint is bound; transport() is valid from now until stopped_listening returns.
  virtual void started_listening() {}
  /// One whole datagram from `from`. The view is valid only during this call. A
  /// datagram is never delivered truncated.
  virtual void datagram_received(std::string_view data, const Address& from) {
    (void)data, (void)from;
  }
  /// On a connected endpoint: the peer's host answered that nothing listens on its port
  /// (ICMP port unreachable). The endpoint stays open; later datagrams still flow.
  virtual void connection_refused() {}
  /// A datagram could not be sent (or a receive failed) for a reason other than refusal:
  /// network unreachable, no buffer space, too long for the path... The endpoint stays
  /// open.
  virtual void error_received(const Reason& reason) { (void)reason; }
  /// The endpoint is closed (stop_listening, or the reactor's transport failed for good);
  /// called exactly once, after started_listening.
  virtual void stopped_listening() {}

  /// The transport; throws std::logic_error when not attached.
  DatagramTransport& transport() const {
    if (!transport_) throw std::logic_error("DatagramProtocol::transport(): not attached");
    return *transport_;
  }
  /// True between make_connection and the end of stopped_listening.
  bool has_transport() const noexcept { return transport_ != nullptr; }

  /// Attaches the transport and calls started_listening(). Transports call this; tests can
  /// too, with an in-memory transport. Throws std::logic_error if already attached.
  void make_connection(DatagramTransport& transport) {
    if (transport_) throw std::logic_error("DatagramProtocol: already attached to a transport");
    transport_ = &transport;
    started_listening();
  }
  /// Calls stopped_listening() and detaches. Transports call this once.
  void end_connection() {
    if (!transport_) return;
    struct Detach {
      DatagramTransport*& t;
      ~Detach() { t = nullptr; }
    } detach{transport_};
    stopped_listening();
  }

 private:
  DatagramTransport* transport_ = nullptr;
};

/// A bound datagram endpoint. It is also the ListeningPort its listen_* call returns:
/// get_host() is the bound address and stop_listening() closes it (stopped_listening
/// follows from the loop). All calls are for the reactor's thread only.
///
/// Sending never blocks: a datagram the kernel cannot take at once is queued and sent
/// when the socket becomes writable; buffer_size() counts queued bytes. Send failures
/// arrive later as error_received (or connection_refused), never from inside write.
class DatagramTransport : public ListeningPort {
 public:
  /// Sends one datagram to `to` (a numeric address). Throws std::length_error if the
  /// payload is longer than max_datagram_size() (nothing is sent; the message names both
  /// sizes), std::invalid_argument if `to` is not a numeric IP address of a family the
  /// endpoint can reach, or std::logic_error on a connected endpoint whose peer is not
  /// `to`. Dropped silently after stop_listening.
  void write(std::string_view data, const Address& to) { send_datagram(data, &to); }
  /// Sends one datagram to the connected peer. Throws std::logic_error when not
  /// connected and std::length_error as above.
  void write(std::string_view data) { send_datagram(data, nullptr); }

  /// Connects the endpoint to `peer` (a numeric address): from now on only datagrams from
  /// `peer` are delivered, write(data) sends to it, and an ICMP port unreachable reply
  /// arrives as connection_refused(). Throws std::invalid_argument for a non-numeric host
  /// and std::system_error if the kernel refuses.
  virtual void connect(const Address& peer) = 0;
  /// The connected peer, or an Address of family none.
  virtual Address get_peer() const = 0;

  /// The largest payload write() accepts (65507 for IPv4 UDP, 65527 for IPv6).
  virtual std::size_t max_datagram_size() const = 0;
  /// Bytes queued and not yet handed to the kernel.
  virtual std::size_t buffer_size() const = 0;

  /// Stops delivering datagrams until resume_reading (the kernel queues, then drops).
  /// Idempotent.
  virtual void pause_reading() = 0;
  /// Delivers datagrams again. Idempotent.
  virtual void resume_reading() = 0;

  // --- multicast and broadcast (an endpoint that does not support them reports
  //     std::errc::operation_not_supported) -------------------------------------------

  /// Joins multicast group `group` (numeric) on the interface with address `interface`
  /// ("" lets the kernel choose).
  virtual void join_group(const std::string& group, const std::string& interface,
                          std::error_code& ec) {
    (void)group, (void)interface;
    ec = std::make_error_code(std::errc::operation_not_supported);
  }
  /// Leaves a group joined with join_group.
  virtual void leave_group(const std::string& group, const std::string& interface,
                           std::error_code& ec) {
    (void)group, (void)interface;
    ec = std::make_error_code(std::errc::operation_not_supported);
  }
  /// Sets the TTL (hop limit) of outgoing multicast datagrams (0..255).
  virtual void set_multicast_ttl(int ttl, std::error_code& ec) {
    (void)ttl;
    ec = std::make_error_code(std::errc::operation_not_supported);
  }
  /// Sends multicast datagrams out of the interface with (IPv4) address `interface`, or
  /// (IPv6) the interface index written in decimal.
  virtual void set_multicast_interface(const std::string& interface, std::error_code& ec) {
    (void)interface;
    ec = std::make_error_code(std::errc::operation_not_supported);
  }
  /// Whether this host's own members of a group receive what this endpoint sends to it.
  virtual void set_multicast_loopback(bool enabled, std::error_code& ec) {
    (void)enabled;
    ec = std::make_error_code(std::errc::operation_not_supported);
  }
  /// Allows (or forbids again) sending to broadcast addresses. Off by default: a send to
  /// a broadcast address then fails with EACCES through error_received.
  virtual void set_broadcast_allowed(bool enabled, std::error_code& ec) {
    (void)enabled;
    ec = std::make_error_code(std::errc::operation_not_supported);
  }

  /// Throwing forms of the calls above: std::system_error names the call and the value.
  void join_group(const std::string& group, const std::string& interface = {}) {
    std::error_code ec;
    join_group(group, interface, ec);
    if (ec) throw std::system_error(ec, "join_group " + group);
  }
  /// Throwing form of leave_group.
  void leave_group(const std::string& group, const std::string& interface = {}) {
    std::error_code ec;
    leave_group(group, interface, ec);
    if (ec) throw std::system_error(ec, "leave_group " + group);
  }
  /// Throwing form of set_multicast_ttl; also throws std::invalid_argument outside 0..255.
  void set_multicast_ttl(int ttl) {
    if (ttl < 0 || ttl > 255)
      throw std::invalid_argument("set_multicast_ttl: ttl must be in 0..255, got " +
                                  std::to_string(ttl));
    std::error_code ec;
    set_multicast_ttl(ttl, ec);
    if (ec) throw std::system_error(ec, "set_multicast_ttl " + std::to_string(ttl));
  }
  /// Throwing form of set_multicast_interface.
  void set_multicast_interface(const std::string& interface) {
    std::error_code ec;
    set_multicast_interface(interface, ec);
    if (ec) throw std::system_error(ec, "set_multicast_interface " + interface);
  }
  /// Throwing form of set_multicast_loopback.
  void set_multicast_loopback(bool enabled) {
    std::error_code ec;
    set_multicast_loopback(enabled, ec);
    if (ec) throw std::system_error(ec, "set_multicast_loopback");
  }
  /// Throwing form of set_broadcast_allowed.
  void set_broadcast_allowed(bool enabled) {
    std::error_code ec;
    set_broadcast_allowed(enabled, ec);
    if (ec) throw std::system_error(ec, "set_broadcast_allowed");
  }

  /// The OS descriptor, for options the API lacks; -1 when there is none. Do not close it.
  virtual int native_handle() const { return -1; }

 protected:
  /// Sends `data` to `*to`, or to the connected peer when `to` is null.
  virtual void send_datagram(std::string_view data, const Address* to) = 0;
};

}  // namespace torsion
