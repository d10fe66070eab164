#pragma once
/// \file
/// Protocol, Factory and ClientFactory: the classes users subclass.

#include <functional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/address.hpp"
#include "framework/detail/protocol_scope.hpp"
#include "framework/protocol_gone_error.hpp"
#include "framework/reason.hpp"
#include "framework/transport.hpp"

namespace torsion {

/// Handles one connection. Subclass it and override the events you need. All events
/// come from the reactor loop on the reactor's thread, one at a time, never re-entered.
class Protocol {
 public:
  virtual ~Protocol();

  /// The connection is up; transport() is valid from now until connection_lost returns.
  virtual void connection_made() {}
  /// Bytes from the peer. The view is valid only during this call.
  virtual void data_received(std::string_view data) { (void)data; }
  /// The peer sent end-of-file (its write side is closed). Return true to keep the
  /// connection open for writing (half-close, Twisted's readConnectionLost); the default
  /// false closes it cleanly after the write queue drains (as asyncio). Nothing more is
  /// read after it, so, as in asyncio and Twisted, a reset from the peer is noticed only
  /// at the next write. If this side already called lose_write_connection(), both
  /// directions are done and the connection closes cleanly whatever this returns.
  virtual bool eof_received() { return false; }
  /// The connection is gone; called exactly once, after connection_made.
  virtual void connection_lost(const Reason& reason) { (void)reason; }

  /// The transport; throws std::logic_error when not connected.
  Transport& transport() const;
  /// True between make_connection and the end of connection_lost.
  bool has_transport() const noexcept { return transport_ != nullptr; }

  /// Attaches the transport and calls connection_made(). Transports call this; tests can
  /// too, with an in-memory transport.
  void make_connection(Transport& transport);
  /// Calls connection_lost(reason) and detaches the transport. Transports call this once.
  void end_connection(const Reason& reason);

  /// Wraps `fn` (typically a lambda capturing `this`) so that it runs only while this
  /// protocol exists. A callable that captures the protocol and is handed to
  /// Deferred::add_* / call_soon / call_later while the protocol handles an event (or
  /// while a callback bound to it runs) is bound like this automatically
  /// (docs/protocols-and-factories.md, "Callbacks that outlive their protocol"); use
  /// guard for one handed out at any other time, one that reaches the protocol through
  /// something it owns (a std::function, a shared_ptr), or anything else that may call it
  /// after the protocol is destroyed:
  ///
  ///     lookup(user).add_callback(guard([this](std::string answer) {
  ///       transport().write(answer);
  ///     }));
  ///
  /// Once the protocol is destroyed, a call does nothing if `fn` returns void, and throws
  /// ProtocolGoneError (framework/protocol_gone_error.hpp) otherwise (the rest of a
  /// Deferred chain sees that error). The wrapper holds only a weak token: it never keeps
  /// the protocol alive.
  template <class F>
  [[nodiscard]] auto guard(F fn) const {
    return detail::bind_to(detail::Owner{life_token(), this}, std::move(fn));
  }

  /// Keeps `owner` alive as long as this protocol: it is released when the protocol is
  /// destroyed, after the subclass's members. For library code that gives a protocol
  /// something it must not outlive (connect_protocol's one-off factory).
  void keep_alive(std::shared_ptr<const void> owner);

 private:
  friend class Factory;
  friend detail::Owner detail::owner_in(const unsigned char*, std::size_t);
  struct Life;
  std::weak_ptr<void> life_token() const;

  Transport* transport_ = nullptr;
  // Made by the first guard() or keep_alive(); expires with *this.
  mutable std::shared_ptr<Life> life_;
};

class ListeningPort;

/// Builds a protocol for each accepted connection. A factory may be declared before or
/// after the Reactor: while it lives, the ports listening with it and the connections it
/// built use it; when it is destroyed first, its listening ports stop listening, its
/// connectors stop (no more factory events), and the connections whose protocols it built
/// are closed and their protocols destroyed at once, without connection_lost (as ~Reactor
/// does), so no protocol outlives its factory. Reactor thread only.
class Factory {
 public:
  Factory();
  /// Stops what still uses this factory (see the class comment).
  virtual ~Factory();
  /// A copy is a new factory: it shares no ports or connections with `other`.
  Factory(const Factory& other);
  /// Keeps this factory's own ports and connections.
  Factory& operator=(const Factory& other);

  /// Returns a protocol for a new connection from `peer`, or null to refuse it (the
  /// connection is closed at once and no protocol event fires).
  virtual std::unique_ptr<Protocol> build_protocol(const Address& peer) = 0;

  /// Twisted's startFactory: called when the first listening port or connector using this
  /// factory starts (before its first build_protocol). Does nothing by default.
  virtual void start_factory() {}
  /// Twisted's stopFactory: called when the last one stops (a port's stop_listening, a
  /// shutdown; a connector's attempt failing or connection ending without a new attempt
  /// started from the callback). Not called by ~Reactor or ~Factory. Does nothing by
  /// default.
  virtual void stop_factory() {}

  /// For transports: a listening port or connector starts using this factory (calls
  /// start_factory() for the first one; an exception from it is logged).
  void do_start();
  /// For transports: one stops (calls stop_factory() after the last; logged likewise).
  void do_stop();
  /// How many ports and connectors use this factory now (do_start minus do_stop).
  int users() const noexcept { return users_; }
  /// build_protocol(peer), with the protocol (if any) tracked: its connection is closed if
  /// this factory is destroyed first. Transports and wrapping factories build with it.
  std::unique_ptr<Protocol> build_tracked(const Address& peer);
  /// For transports: `protocol`, built by this factory, now has a connection; it is
  /// closed if this factory is destroyed first.
  void track_connection(Protocol& protocol);
  /// For transports: `port` listens with this factory; it stops listening if this
  /// factory is destroyed first.
  void track_port(const std::shared_ptr<ListeningPort>& port);
  /// For transports: expires when this factory is destroyed; ports and connectors check
  /// it before every use.
  std::weak_ptr<const void> alive_token() const noexcept { return links_; }

 private:
  struct Links;
  std::shared_ptr<Links> links_;
  int users_ = 0;
};

/// An outgoing connection attempt, handed to ClientFactory callbacks. Connectors are
/// made by connect calls (connect_tcp, connect_unix, connect_ssl, endpoints) and owned
/// by shared_ptr: the returned handle is optional. While an attempt is in progress or the
/// connection is up, the reactor keeps the connector alive; a ReconnectingClientFactory
/// keeps it alive while a retry is pending. Dropping the handle never cancels or frees
/// anything in use.
class Connector : public std::enable_shared_from_this<Connector> {
 public:
  virtual ~Connector();
  /// Where it connects to (host as given, port).
  virtual Address get_destination() const = 0;
  /// Stops a connection attempt in progress (client_connection_failed follows with
  /// error::cancelled), or closes the connection if it is up (lose_connection).
  virtual void disconnect() = 0;
  /// Starts connecting again (after a failure or a loss); ignored while connecting or
  /// connected.
  virtual void connect() = 0;

  /// Keeps `owner` alive as long as this connector: released when the connector is
  /// destroyed, after the subclass's members. For library code whose one-off factory must
  /// live exactly as long as the attempt (connect_protocol's).
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

 private:
  std::vector<std::shared_ptr<const void>> owners_;
};

/// A factory for outgoing connections: hears how each attempt goes. Destroyed while its
/// connector is in use, it is no longer called (see Factory).
class ClientFactory : public Factory {
 public:
  /// An attempt started.
  virtual void started_connecting(Connector& connector) { (void)connector; }
  /// The attempt failed (refused, timed out, lookup failed, refused_by_factory...).
  virtual void client_connection_failed(Connector& connector, const Reason& reason) {
    (void)connector, (void)reason;
  }
  /// An established connection ended; called after the protocol's connection_lost.
  virtual void client_connection_lost(Connector& connector, const Reason& reason) {
    (void)connector, (void)reason;
  }
};

/// A Factory (or ClientFactory) that builds each protocol by calling a function.
template <class Base = Factory>
class FunctionFactory : public Base {
 public:
  /// Makes the protocol for a connection from `peer`; may return null to refuse it.
  using Builder = std::function<std::unique_ptr<Protocol>(const Address&)>;
  /// build_protocol calls `builder` for every connection, on the reactor thread.
  explicit FunctionFactory(Builder builder) : builder_(std::move(builder)) {}
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override {
    return builder_(peer);
  }

 private:
  Builder builder_;
};

/// A factory whose protocols are `P`, constructed with copies of `args...`: the factory
/// keeps one const copy of each argument and passes it to every P it builds. Pass
/// std::ref(x) for the protocols to refer to `x` itself (a `const X&` parameter given `x`
/// binds to the factory's copy; an `X&` one does not compile).
template <class P, class... Args>
FunctionFactory<Factory> make_factory(Args... args) {
  return FunctionFactory<Factory>(
      [=](const Address&) -> std::unique_ptr<Protocol> { return std::make_unique<P>(args...); });
}

}  // namespace torsion
