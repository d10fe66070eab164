#include "transports/udp.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/multicast.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <deque>
#include <exception>
#include <stdexcept>
#include <string>

#include "framework/detail/guard.hpp"
#include "framework/detail/tracked.hpp"
#include "framework/log.hpp"
#include "transports/detail/bound_endpoint.hpp"
#include "transports/detail/io_close.hpp"

namespace torsion {
namespace {

using udp = asio::ip::udp;

Address to_address(const udp::endpoint& ep) {
  return Address::ip(ep.address().to_string(), ep.port());
}

// Largest UDP payloads: 65535 minus the UDP header and the minimal IP header (IPv6's
// header is not counted in its payload length).
constexpr std::size_t kMaxV4 = 65535 - 8 - 20;
constexpr std::size_t kMaxV6 = 65535 - 8;
// Big enough for any UDP payload, so a received datagram is never truncated.
constexpr std::size_t kReceiveBuffer = 65536;

class UdpTransport final : public DatagramTransport,
                           public detail::Tracked,
                           public std::enable_shared_from_this<UdpTransport> {
 public:
  UdpTransport(Reactor& reactor, DatagramProtocol& protocol, std::size_t max_queued)
      : connections_(reactor.connections()), socket_(reactor.context()), protocol_(protocol),
        max_queued_(max_queued) {}

  ~UdpTransport() override { connections_.unlink(*this); }

  void open(const udp::endpoint& ep, bool reuse_address, std::error_code& ec) {
    socket_.open(ep.protocol(), ec);
    if (!ec && reuse_address) socket_.set_option(udp::socket::reuse_address(true), ec);
    if (!ec) socket_.bind(ep, ec);
    if (!ec) socket_.non_blocking(true, ec);
    const auto local = detail::bound_endpoint_or_close(socket_, ec);
    if (ec) return;
    host_ = to_address(local);
    v6_ = ep.address().is_v6();
    open_ = true;
    self_ = shared_from_this();
    connections_.link(*this);
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->start(); });
  }

  // ListeningPort
  Address get_host() const override { return host_; }
  bool listening() const override { return open_; }
  void stop_listening() override {
    if (!open_) return;
    open_ = false;
    queue_.clear();
    queued_bytes_ = 0;
    close_socket();
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->finish(); });
  }

  // DatagramTransport
  void connect(const Address& peer) override {
    const udp::endpoint ep = endpoint_for(peer, "connect");
    std::error_code ec;
    socket_.connect(ep, ec);
    if (ec) throw std::system_error(normalize_os_error(ec), "connect to " + peer.to_string());
    peer_ = to_address(ep);
    peer_ep_ = ep;
    connected_ = true;
  }
  Address get_peer() const override { return peer_; }
  std::size_t max_datagram_size() const override { return v6_ ? kMaxV6 : kMaxV4; }
  std::size_t buffer_size() const override { return queued_bytes_; }
  int native_handle() const override {
    return open_ ? const_cast<udp::socket&>(socket_).native_handle() : -1;
  }

  void pause_reading() override { paused_ = true; }
  void resume_reading() override {
    if (!paused_) return;
    paused_ = false;
    if (open_ && started_ && !reading_ && !delivering_)
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        if (self->open_ && !self->paused_ && !self->reading_ && !self->delivering_)
          self->start_read();
      });
  }

  using DatagramTransport::join_group;
  using DatagramTransport::leave_group;
  using DatagramTransport::set_broadcast_allowed;
  using DatagramTransport::set_multicast_interface;
  using DatagramTransport::set_multicast_loopback;
  using DatagramTransport::set_multicast_ttl;

  void join_group(const std::string& group, const std::string& interface,
                  std::error_code& ec) override {
    membership(group, interface, true, ec);
  }
  void leave_group(const std::string& group, const std::string& interface,
                   std::error_code& ec) override {
    membership(group, interface, false, ec);
  }
  void set_multicast_ttl(int ttl, std::error_code& ec) override {
    if (ttl < 0 || ttl > 255)
      throw std::invalid_argument("set_multicast_ttl: ttl must be in 0..255, got " +
                                  std::to_string(ttl));
    socket_.set_option(asio::ip::multicast::hops(ttl), ec);
    ec = normalize_os_error(ec);
  }
  void set_multicast_interface(const std::string& interface, std::error_code& ec) override {
    if (v6_) {
      try {
        socket_.set_option(asio::ip::multicast::outbound_interface(
                               static_cast<unsigned int>(std::stoul(interface))),
                           ec);
      } catch (const std::exception&) {
        ec = std::make_error_code(std::errc::invalid_argument);
      }
    } else {
      const auto a = asio::ip::make_address(interface, ec);
      if (ec || !a.is_v4()) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return;
      }
      socket_.set_option(asio::ip::multicast::outbound_interface(a.to_v4()), ec);
    }
    ec = normalize_os_error(ec);
  }
  void set_multicast_loopback(bool enabled, std::error_code& ec) override {
    socket_.set_option(asio::ip::multicast::enable_loopback(enabled), ec);
    ec = normalize_os_error(ec);
  }
  void set_broadcast_allowed(bool enabled, std::error_code& ec) override {
    socket_.set_option(udp::socket::broadcast(enabled), ec);
    ec = normalize_os_error(ec);
  }

  // Tracked: a reactor shutdown closes the endpoint.
  void lose_tracked() override { stop_listening(); }
  void abort_tracked() override { stop_listening(); }
  void release_tracked() override {
    open_ = false;
    finished_ = true;
    close_socket();
    connections_.unlink(*this);
    auto keep = std::move(self_);
  }

 protected:
  void send_datagram(std::string_view data, const Address* to) override {
    if (data.size() > max_datagram_size())
      throw std::length_error("UDP datagram of " + std::to_string(data.size()) +
                              " bytes exceeds the maximum of " +
                              std::to_string(max_datagram_size()) + " bytes");
    udp::endpoint ep;
    if (to) {
      ep = endpoint_for(*to, "write");
      if (connected_ && ep != peer_ep_)
        throw std::logic_error("write: endpoint is connected to " + peer_.to_string() +
                               ", not " + to->to_string());
    } else {
      if (!connected_) throw std::logic_error("write(data): endpoint is not connected");
      ep = peer_ep_;
    }
    if (!open_) return;
    if (queue_.empty()) {
      std::error_code ec;
      if (connected_)
        socket_.send(asio::buffer(data.data(), data.size()), 0, ec);
      else
        socket_.send_to(asio::buffer(data.data(), data.size()), ep, 0, ec);
      if (!ec) return;
      if (ec != asio::error::would_block && ec != asio::error::try_again) {
        post_error(ec, ep);
        return;
      }
    }
    if (queued_bytes_ + data.size() > max_queued_bytes()) {
      post_error(std::make_error_code(std::errc::no_buffer_space), ep);
      return;
    }
    queue_.push_back({std::string(data), ep});
    queued_bytes_ += data.size();
    wait_writable();
  }

 private:
  std::size_t max_queued_bytes() const noexcept { return max_queued_; }

  udp::endpoint endpoint_for(const Address& a, const char* what) const {
    std::error_code ec;
    const auto address = asio::ip::make_address(a.host(), ec);
    if (ec || a.family() == Address::Family::unix_socket || a.family() == Address::Family::none)
      throw std::invalid_argument(std::string(what) + ": not a numeric IP address: '" +
                                  a.to_string() + "'");
    if (address.is_v6() && !v6_)
      throw std::invalid_argument(std::string(what) + ": IPv6 address " + a.to_string() +
                                  " on an IPv4 endpoint");
    if (address.is_v4() && v6_)  // reach IPv4 peers through a dual-stack socket
      return {asio::ip::make_address_v6(asio::ip::v4_mapped, address.to_v4()), a.port()};
    return {address, a.port()};
  }

  void membership(const std::string& group, const std::string& interface, bool join,
                  std::error_code& ec) {
    const auto g = asio::ip::make_address(group, ec);
    if (ec || !g.is_multicast()) {
      ec = std::make_error_code(std::errc::invalid_argument);
      return;
    }
    if (g.is_v4()) {
      asio::ip::address_v4 iface = asio::ip::address_v4::any();
      if (!interface.empty()) {
        const auto i = asio::ip::make_address(interface, ec);
        if (ec || !i.is_v4()) {
          ec = std::make_error_code(std::errc::invalid_argument);
          return;
        }
        iface = i.to_v4();
      }
      if (join)
        socket_.set_option(asio::ip::multicast::join_group(g.to_v4(), iface), ec);
      else
        socket_.set_option(asio::ip::multicast::leave_group(g.to_v4(), iface), ec);
    } else {
      unsigned long index = 0;
      if (!interface.empty()) {
        try {
          index = std::stoul(interface);
        } catch (const std::exception&) {
          ec = std::make_error_code(std::errc::invalid_argument);
          return;
        }
      }
      if (join)
        socket_.set_option(asio::ip::multicast::join_group(g.to_v6(), index), ec);
      else
        socket_.set_option(asio::ip::multicast::leave_group(g.to_v6(), index), ec);
    }
    ec = normalize_os_error(ec);
  }

  template <class F>
  void guarded(const char* what, F&& fn) {
    detail::run_guarded(fn, [&](const char* text, const std::exception_ptr&) {
      log(LogLevel::error, detail::exception_in(what, text) + " (UDP " + host_.to_string() + ")");
    });
  }

  void start() {
    if (!open_) return;
    started_ = true;
    guarded("started_listening", [&] { protocol_.make_connection(*this); });
    if (open_ && !paused_ && !reading_) start_read();
  }

  void start_read() {
    if (!rbuf_) rbuf_ = std::make_unique<char[]>(kReceiveBuffer);
    reading_ = true;
    socket_.async_receive_from(
        asio::buffer(rbuf_.get(), kReceiveBuffer), sender_,
        [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
          self->on_read(ec, n);
        });
  }

  // Closes the socket, or with an operation queued on io_uring cancels it and closes it
  // when the last handler has run (detail/io_close.hpp says why).
  void close_socket() { close_after_ops_ = !detail::close_or_cancel(socket_, reading_ || write_waiting_); }

  // Every operation's handler calls this first, once its flag is cleared.
  void op_done() {
    if (close_after_ops_ && !reading_ && !write_waiting_)
      close_after_ops_ = !detail::close_or_cancel(socket_, false);
  }

  void on_read(const std::error_code& ec, std::size_t n) {
    reading_ = false;
    op_done();
    if (!open_) return;
    delivering_ = true;
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        delivering_ = false;
        return;
      }
      if (ec == asio::error::connection_refused)
        guarded("connection_refused", [&] { protocol_.connection_refused(); });
      else
        guarded("error_received", [&] {
          protocol_.error_received(Reason(error::datagram_failed, ec, "receiving"));
        });
    } else {
      const Address from = to_address(sender_);
      guarded("datagram_received",
              [&] { protocol_.datagram_received(std::string_view(rbuf_.get(), n), from); });
    }
    delivering_ = false;
    if (open_ && !paused_ && !reading_) start_read();
  }

  void post_error(std::error_code ec, const udp::endpoint& ep) {
    asio::post(socket_.get_executor(), [self = shared_from_this(), ec, ep] {
      if (!self->open_) return;
      if (ec == asio::error::connection_refused)
        self->guarded("connection_refused", [&] { self->protocol_.connection_refused(); });
      else
        self->guarded("error_received", [&] {
          self->protocol_.error_received(
              Reason(error::datagram_failed, ec, "sending to " + to_address(ep).to_string()));
        });
    });
  }

  void wait_writable() {
    if (write_waiting_) return;
    write_waiting_ = true;
    socket_.async_wait(udp::socket::wait_write,
                       [self = shared_from_this()](const std::error_code& ec) {
                         self->write_waiting_ = false;
                         self->op_done();
                         if (!self->open_ || ec) return;
                         self->drain();
                       });
  }

  void drain() {
    while (!queue_.empty()) {
      auto& [data, ep] = queue_.front();
      std::error_code ec;
      if (connected_)
        socket_.send(asio::buffer(data), 0, ec);
      else
        socket_.send_to(asio::buffer(data), ep, 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        wait_writable();
        return;
      }
      if (ec) post_error(ec, ep);
      queued_bytes_ -= data.size();
      queue_.pop_front();
    }
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    if (!started_) {  // stopped before the posted start ran: keep the promised order
      started_ = true;
      guarded("started_listening", [&] { protocol_.make_connection(*this); });
    }
    guarded("stopped_listening", [&] { protocol_.end_connection(); });
    connections_.unlink(*this);
    auto keep = std::move(self_);
  }

  struct Queued {
    std::string data;
    udp::endpoint to;
  };

  detail::TrackedList& connections_;
  udp::socket socket_;
  DatagramProtocol& protocol_;
  std::size_t max_queued_;
  std::shared_ptr<UdpTransport> self_;
  Address host_;
  Address peer_;
  udp::endpoint peer_ep_;
  udp::endpoint sender_;
  std::unique_ptr<char[]> rbuf_;
  std::deque<Queued> queue_;
  std::size_t queued_bytes_ = 0;
  bool v6_ = false;
  bool open_ = false;
  bool started_ = false;
  bool connected_ = false;
  bool paused_ = false;
  bool reading_ = false;
  bool delivering_ = false;
  bool write_waiting_ = false;
  bool close_after_ops_ = false;  // close_socket() cancelled an operation: close when it ends
  bool finished_ = false;
};

udp::endpoint bind_endpoint(const std::string& interface, int port) {
  const auto p = static_cast<std::uint16_t>(port);
  if (interface.empty()) return {udp::v4(), p};
  std::error_code ec;
  const auto address = asio::ip::make_address(interface, ec);
  if (ec)
    throw std::invalid_argument("listen_udp: interface must be a numeric address, got '" +
                                interface + "'");
  return {address, p};
}

}  // namespace

std::shared_ptr<DatagramTransport> listen_udp(Reactor& reactor, int port,
                                              DatagramProtocol& protocol,
                                              const UdpListenOptions& options,
                                              std::error_code& ec) {
  if (port < 0 || port > 65535)
    throw std::invalid_argument("listen_udp: port must be in 0..65535, got " +
                                std::to_string(port));
  const auto ep = bind_endpoint(options.interface, port);
  auto transport = std::make_shared<UdpTransport>(reactor, protocol, options.max_queued_bytes);
  transport->open(ep, options.reuse_address, ec);
  if (ec) {
    ec = normalize_os_error(ec);
    return nullptr;
  }
  return transport;
}

std::shared_ptr<DatagramTransport> listen_udp(Reactor& reactor, int port,
                                              DatagramProtocol& protocol,
                                              const UdpListenOptions& options) {
  std::error_code ec;
  auto transport = listen_udp(reactor, port, protocol, options, ec);
  detail::throw_if_listen_failed(ec, "listen_udp", options.interface, port);
  return transport;
}

}  // namespace torsion
