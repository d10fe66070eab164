#pragma once
/// \file
/// WrappingFactory and ProtocolWrapper: the mechanism behind every policy (connection
/// limits, throttling, time-outs) and the PROXY protocol. A wrapper stands between the
/// real transport and the user's protocol: to the transport it is the protocol, to the
/// protocol it is the transport, and it forwards both ways unless a subclass intervenes.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "framework/address.hpp"
#include "framework/protocol.hpp"
#include "framework/transport.hpp"

namespace torsion {

class WrappingFactory;

/// Wraps one protocol (Twisted's policies.ProtocolWrapper). Every event from the real
/// transport goes to the wrapped protocol, and every call the wrapped protocol makes on
/// its transport (this object) goes to the real transport. Subclasses override either
/// side. The wrapper registers with its factory when built and unregisters when
/// destroyed, so the factory always knows its live connections. A factory destroyed
/// while its connections are open closes them and destroys their wrappers (see Factory);
/// it detaches any wrapper still alive, so that its destruction stays safe.
class ProtocolWrapper : public Protocol, public Transport {
 public:
  /// `wrapped` may be null and attached later (see attach). `peer` is the address the
  /// factory was asked to build for.
  ProtocolWrapper(WrappingFactory& factory, std::unique_ptr<Protocol> wrapped, Address peer);
  /// Destroys the wrapped protocol and unregisters from the factory.
  ~ProtocolWrapper() override;
  ProtocolWrapper(const ProtocolWrapper&) = delete;
  ProtocolWrapper& operator=(const ProtocolWrapper&) = delete;

  /// The wrapped protocol, or null before attach.
  Protocol* wrapped() const noexcept { return wrapped_.get(); }
  /// The factory that built this wrapper. Throws std::logic_error if that factory was
  /// destroyed while this connection lived (a broken "factory outlives connections" rule).
  WrappingFactory& factory() const;
  /// The peer address the connection was accepted from (the real transport's peer).
  const Address& accepted_peer() const noexcept { return peer_; }

  // Protocol: events from the real transport, forwarded to the wrapped protocol.
  void connection_made() override;
  void data_received(std::string_view data) override;
  bool eof_received() override;
  void connection_lost(const Reason& reason) override;

  // Transport: calls from the wrapped protocol, forwarded to the real transport.
  void lose_connection() override;
  void abort_connection() override;
  void lose_write_connection() override;
  Address get_peer() const override;
  Address get_host() const override;
  std::size_t buffer_size() const override;
  void register_producer(Producer& producer, bool streaming) override;
  void unregister_producer() override;
  void set_write_buffer_limits(std::size_t high, std::size_t low) override;
  WriteBufferLimits write_buffer_limits() const override;
  void set_pause_reading_when_full(bool enabled) override;
  bool pauses_reading_when_full() const override;
  bool connected() const override;
  int native_handle() const override;
  /// The real transport beneath this wrapper while connected, else null.
  Transport* lower_transport() const override;
  void pause_producing() override;
  void resume_producing() override;
  void stop_producing() override;

 protected:
  void write_bytes(std::string_view data) override;
  void write_owned(std::string&& data) override;
  void write_parts(std::span<const std::string_view> parts) override;

  /// Sets the wrapped protocol (for wrappers that build it late, e.g. after reading a
  /// header). If the connection is up, the protocol's connection_made runs now.
  /// Throws std::logic_error if a protocol is already attached.
  void attach(std::unique_ptr<Protocol> wrapped);
  /// True once the wrapped protocol has heard connection_made (and until connection_lost).
  bool wrapped_connected() const noexcept { return wrapped_made_; }

 private:
  friend class WrappingFactory;
  WrappingFactory* factory_;  // null once the factory is destroyed
  std::unique_ptr<Protocol> wrapped_;
  Address peer_;
  std::size_t index_ = 0;  // position in factory_.wrappers_
  bool wrapped_made_ = false;
};

/// A Factory that wraps every protocol another factory builds (Twisted's
/// policies.WrappingFactory). Subclass it and override allow() to refuse connections,
/// wrap() to use your own ProtocolWrapper, and registered()/unregistered() to track
/// connections. Wrapping factories compose: one may wrap another.
/// Must outlive every protocol it built (as any Factory) for those protocols to work;
/// destroying it first only detaches them, so that destroying them later is safe.
class WrappingFactory : public Factory {
 public:
  /// `wrapped` must outlive this factory.
  explicit WrappingFactory(Factory& wrapped);
  /// Detaches the wrappers still alive (their factory() then throws).
  ~WrappingFactory() override;

  /// Refuses (returns null) if allow(peer) says no or the wrapped factory refuses;
  /// otherwise returns wrap(inner, peer).
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;

  /// The factory being wrapped.
  Factory& wrapped_factory() const noexcept { return wrapped_; }
  /// Live wrappers (built and not yet destroyed), in no particular order.
  const std::vector<ProtocolWrapper*>& protocols() const noexcept { return wrappers_; }
  /// How many wrappers are live.
  std::size_t connection_count() const noexcept { return wrappers_.size(); }
  /// How many connections allow() refused so far.
  std::size_t refused_count() const noexcept { return refused_; }

 protected:
  /// Whether to accept a connection from `peer`; the default accepts all.
  virtual bool allow(const Address& peer);
  /// Wraps `inner` (never null); the default makes a plain ProtocolWrapper.
  virtual std::unique_ptr<ProtocolWrapper> wrap(std::unique_ptr<Protocol> inner,
                                                const Address& peer);
  /// A wrapper was built (called from its constructor: use only the base part).
  virtual void registered(ProtocolWrapper& wrapper);
  /// A wrapper is being destroyed (called from its destructor: use only the base part).
  virtual void unregistered(ProtocolWrapper& wrapper);

 private:
  friend class ProtocolWrapper;
  void add(ProtocolWrapper& wrapper);
  void remove(ProtocolWrapper& wrapper);

  Factory& wrapped_;
  std::vector<ProtocolWrapper*> wrappers_;
  std::size_t refused_ = 0;
};

}  // namespace torsion
