#pragma once
// Private: the one accept loop behind listen_tcp, listen_unix and listen_ssl. They differ
// in how the listening socket is opened (done by the caller on acceptor(), before start())
// and in what becomes of an accepted socket (accepted(): a StreamEngine at once, or a
// TLS handshake first). What they share:
//   - one async_accept at a time, re-armed after each connection;
//   - running out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses
//     accepting for 0.1 s, keeping the listening socket, instead of spinning (logged at
//     most once a second, with the count); any other accept error is logged and
//     accepting goes on;
//   - the factory's build_protocol: null refuses the connection, an exception is logged
//     and refuses it too (build_server_protocol);
//   - stop_listening closes the acceptor (idempotent); the reactor tracks the port so that
//     shutdown() closes it first (opened()).
// Each pending operation, the back-off timer included, holds a shared_ptr to the port.

#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "framework/delayed_call.hpp"
#include "framework/listening_port.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "transports/detail/io_close.hpp"
#include "transports/detail/log_limit.hpp"
#include "transports/detail/stream_common.hpp"

namespace torsion::detail {

// The protocol `factory` builds for a connection from `peer`: null when it refuses, when
// it throws (logged), or when it was destroyed. The factory tracks the protocol, so that
// destroying the factory closes the connection.
inline std::unique_ptr<Protocol> build_server_protocol(const FactoryRef& ref, const Address& peer) {
  Factory* factory = ref.get();
  if (!factory) return nullptr;
  try {
    return factory->build_tracked(peer);
  } catch (...) {
    log_exception("build_protocol (the connection is refused)");
    return nullptr;
  }
}

template <class Proto>
class StreamPort : public ListeningPort, public std::enable_shared_from_this<StreamPort<Proto>> {
 public:
  using Socket = typename Proto::socket;

  Address get_host() const override { return host_; }
  bool listening() const override { return listening_; }

  void stop_listening() override {
    if (!listening_) return;
    listening_ = false;
    backoff_.cancel();
    // With an accept queued on io_uring: cancelled now, closed by on_accept (io_close.hpp).
    close_or_cancel(acceptor_, accepting_);
    stopped();
    if (Factory* factory = factory_.get()) factory->do_stop();
  }

 protected:
  StreamPort(Reactor& reactor, Factory& factory)
      : reactor_(reactor), factory_(factory), acceptor_(reactor.context()),
        pending_(reactor.context()) {}

  // The listening socket, for the caller to open, bind and listen on before start().
  typename Proto::acceptor& acceptor() noexcept { return acceptor_; }

  // Starts accepting; get_host() answers `host` from now on. The factory hears
  // start_factory (if first) and stops this port if it is destroyed first.
  void start(Address host) {
    host_ = std::move(host);
    listening_ = true;
    if (Factory* factory = factory_.get()) {
      factory->track_port(this->shared_from_this());
      factory->do_start();
    }
    accept_next();
  }

  // A connection from `peer` was accepted: turn `socket` into a transport, or let it go
  // (which closes it).
  virtual void accepted(Socket socket, const Address& peer) = 0;

  // stop_listening() closed the listening socket.
  virtual void stopped() {}

  Reactor& reactor_;
  FactoryRef factory_;

 private:
  void accept_next() {
    accepting_ = true;
    acceptor_.async_accept(pending_, peer_,
                           [self = this->shared_from_this()](const std::error_code& ec) {
                             self->on_accept(ec);
                           });
  }

  void on_accept(const std::error_code& ec) {
    accepting_ = false;
    if (!listening_) {
      close_or_cancel(acceptor_, false);  // stop_listening only cancelled it
      return;
    }
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      const auto os = normalize_os_error(ec);
      if (os == std::errc::too_many_files_open || os == std::errc::too_many_files_open_in_system ||
          os == std::errc::no_buffer_space || os == std::errc::not_enough_memory) {
        // Out of descriptors: keep the socket, wait, try again, instead of spinning.
        // A warning at most once a second; the retries between, at debug level.
        const auto more = out_of_descriptors_log_.admit(reactor_.seconds());
        if (more || log_enabled(LogLevel::debug))
          log(more ? LogLevel::warning : LogLevel::debug,
              "accept on " + host_.to_string() + " failed: " + ec.message() +
                  "; retrying in 0.1 s" + more.value_or(""));
        // The timer holds the port (as the pending accept did), so a port whose handle
        // was dropped keeps listening; stop_listening and ~Reactor cancel it.
        backoff_ = reactor_.call_later(0.1, [self = this->shared_from_this()] {
          if (self->listening_) self->accept_next();
        });
        return;
      }
      log(LogLevel::warning, "accept on " + host_.to_string() + " failed: " + ec.message());
      accept_next();
      return;
    }
    accepted(std::exchange(pending_, Socket(reactor_.context())), to_address(peer_));
    if (listening_) accept_next();
  }

  typename Proto::acceptor acceptor_;
  Socket pending_;
  typename Proto::endpoint peer_;
  Address host_;
  bool listening_ = false;
  bool accepting_ = false;  // an accept is queued on acceptor_
  DelayedCall backoff_;
  LogLimiter out_of_descriptors_log_;
};

// What a listen_* call returns once `port` is open: null, with `ec` normalised, if opening
// failed; else the port, tracked by the reactor (closed first on shutdown()).
template <class Port>
std::shared_ptr<ListeningPort> opened(Reactor& reactor, std::shared_ptr<Port> port,
                                      std::error_code& ec) {
  if (ec) {
    ec = normalize_os_error(ec);
    return nullptr;
  }
  reactor.track_listening_port(port);
  return port;
}

// --- TCP listening sockets, shared by listen_tcp and listen_ssl (defined in tcp.cpp) -----

// The address to bind: every IPv4 interface for "", else the numeric `interface`. Throws
// std::invalid_argument (naming `what`) for a port outside 0..65535 or a non-numeric
// interface.
asio::ip::tcp::endpoint tcp_listen_endpoint(const std::string& interface, int port,
                                            const char* what);

// Opens, binds (SO_REUSEADDR, and SO_REUSEPORT if asked) and listens; returns the bound
// address. On failure sets `ec` and leaves `acceptor` closed.
Address open_tcp_acceptor(asio::ip::tcp::acceptor& acceptor, const asio::ip::tcp::endpoint& ep,
                          int backlog, bool reuse_port, std::error_code& ec);

}  // namespace torsion::detail
