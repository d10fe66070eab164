#pragma once
/// \file
/// The port forwarder of examples/port_forward.cpp, as a Factory that tests can use too.
///
/// Each accepted connection gets an outbound connection to HOST:PORT; bytes are copied
/// both ways. Flow control is what makes it safe (the step Twisted's portforward example
/// leaves out): each side's transport is registered as the streaming producer of the
/// other, so when one side's write buffer passes its high mark, the other side stops
/// reading from its socket until the buffer drains to the low mark. While the outbound
/// connection is being made the client's bytes are held (reading pauses past the high
/// mark) and reading goes on, so a client that leaves meanwhile (EOF before sending
/// anything, or a reset) ends the attempt at once instead of after the connect time-out.
/// Memory per
/// forwarded connection stays bounded (about high mark + one read per direction) however
/// fast one peer sends and however slowly the other reads. Half-closes are forwarded:
/// an EOF from one peer becomes lose_write_connection() towards the other, and the pair
/// closes when both directions are done or either side is lost.

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>

#include "framework/log.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/tcp.hpp"

namespace torsion::examples {

/// Counters a PortForwardFactory keeps for everything it forwards.
struct ForwardStats {
  std::size_t links_open = 0;    ///< forwarded connections alive now
  std::size_t links_total = 0;   ///< accepted so far
  std::size_t peak_buffered = 0; ///< the largest write buffer seen right after a write
};

/// Forwards every accepted connection to host:port. Must outlive its listening port and
/// every link it made (as every Factory). Reactor thread only.
class PortForwardFactory : public Factory {
 public:
  PortForwardFactory(Reactor& reactor, std::string host, int port)
      : reactor_(reactor), host_(std::move(host)), port_(port) {}

  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;

  const ForwardStats& stats() const noexcept { return stats_; }

 private:
  class Link;
  Reactor& reactor_;
  std::string host_;
  int port_;
  ForwardStats stats_;
};

// One forwarded connection: shared by the inbound protocol, the outbound protocol and
// (while connecting) itself, so that the outbound factory outlives the connector's calls.
class PortForwardFactory::Link : public std::enable_shared_from_this<Link> {
 public:
  Link(PortForwardFactory& owner) : owner_(owner), outbound_factory_(*this) {
    ++owner_.stats_.links_open;
    ++owner_.stats_.links_total;
  }
  ~Link() { --owner_.stats_.links_open; }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // One side of the pair; `mine` and `other` pick the Link's transport pointers.
  class Side : public Protocol {
   public:
    Side(std::shared_ptr<Link> link, bool inbound) : link_(std::move(link)), inbound_(inbound) {}

    void connection_made() override {
      Link& l = *link_;
      mine() = &transport();
      if (inbound_) {
        // Keep reading while the outbound connection is made, so that a client that
        // leaves meanwhile is noticed at once; what it sends is held (bounded below).
        l.connect();
        return;
      }
      if (!l.inbound_) {  // the client left while we connected
        transport().lose_connection();
        return;
      }
      // What the client sent while we connected goes first, then its EOF if it came.
      if (!l.early_.empty()) transport().write(std::move(l.early_));
      if (l.early_eof_) transport().lose_write_connection();
      // Each side produces what the other writes: a full buffer pauses the reader.
      transport().register_producer(*l.inbound_, true);
      l.inbound_->register_producer(transport(), true);
      l.inbound_->resume_producing();
    }
    void data_received(std::string_view data) override {
      if (Transport* to = other()) {
        to->write(data);
        auto& peak = link_->owner_.stats_.peak_buffered;
        peak = std::max(peak, to->buffer_size());
      } else if (inbound_) {  // still connecting: hold it, and stop reading past a bound
        link_->early_.append(data);
        if (link_->early_.size() >= transport().write_buffer_limits().high)
          transport().pause_producing();
      }
    }
    bool eof_received() override {
      if (Transport* to = other()) {
        to->lose_write_connection();
        return true;  // keep the other direction going
      }
      if (!inbound_) return false;
      // EOF while still connecting. With nothing sent, the client is gone: close, which
      // gives the connection attempt up (connection_lost). After a request, it is a
      // half-close: forward the request and the EOF once connected.
      if (link_->early_.empty()) return false;
      link_->early_eof_ = true;
      return true;
    }
    void connection_lost(const Reason&) override {
      Link& l = *link_;
      mine() = nullptr;
      if (Transport* to = other()) {
        to->unregister_producer();  // it must not call our dying transport
        to->lose_connection();      // flush what it holds, then close
      } else if (inbound_ && l.connector_) {
        l.connector_->disconnect();  // still connecting: give up
      }
    }

   private:
    Transport*& mine() { return inbound_ ? link_->inbound_ : link_->outbound_; }
    Transport* other() { return inbound_ ? link_->outbound_ : link_->inbound_; }
    std::shared_ptr<Link> link_;
    bool inbound_;
  };

 private:
  class Outbound : public ClientFactory {
   public:
    explicit Outbound(Link& link) : link_(link) {}
    std::unique_ptr<Protocol> build_protocol(const Address&) override {
      auto side = std::make_unique<Side>(link_.shared_from_this(), false);
      link_.connecting_self_.reset();  // the outbound side holds the link from now on
      return side;
    }
    void client_connection_failed(Connector& c, const Reason& reason) override {
      log(LogLevel::warning,
          "port_forward: cannot reach " + c.get_destination().to_string() + ": " +
              reason.message());
      if (link_.inbound_) link_.inbound_->lose_connection();
      // Release the link from the loop, not from inside the connector's call.
      link_.owner_.reactor_.call_soon([keep = std::move(link_.connecting_self_)] {});
    }

   private:
    Link& link_;
  };

  void connect() {
    connecting_self_ = shared_from_this();
    connector_ = connect_tcp(owner_.reactor_, owner_.host_, owner_.port_, outbound_factory_);
  }

  PortForwardFactory& owner_;
  Outbound outbound_factory_;
  std::shared_ptr<Connector> connector_;
  std::shared_ptr<Link> connecting_self_;
  std::string early_;       // from the client while connecting, at most about a high mark
  bool early_eof_ = false;  // and its EOF, if it half-closed meanwhile
  Transport* inbound_ = nullptr;
  Transport* outbound_ = nullptr;
};

inline std::unique_ptr<Protocol> PortForwardFactory::build_protocol(const Address&) {
  return std::make_unique<Link::Side>(std::make_shared<Link>(*this), true);
}

}  // namespace torsion::examples
