#include "transports/unix.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <cmath>
#include <stdexcept>
#include <string>

#include "framework/log.hpp"
#include "transports/detail/stream_transport.hpp"

namespace torsion {
namespace {

using stream = asio::local::stream_protocol;
using UnixTransport = detail::StreamTransport<stream::socket>;

constexpr std::size_t kMaxPath = sizeof(sockaddr_un{}.sun_path) - 1;

// '@name' is the abstract name "\0name"; anything else is a file path.
stream::endpoint to_endpoint(const std::string& path, const char* what) {
  if (path.empty() || path == "@")
    throw std::invalid_argument(std::string(what) + ": empty Unix socket path");
  if (path.size() > kMaxPath)
    throw std::invalid_argument(std::string(what) + ": Unix socket path '" + path + "' is " +
                                std::to_string(path.size()) + " bytes, the limit is " +
                                std::to_string(kMaxPath));
  if (path.find('\0') != std::string::npos)
    throw std::invalid_argument(std::string(what) + ": Unix socket path contains a NUL byte");
  if (path[0] == '@') {
    std::string name(1, '\0');
    name.append(path, 1);
    return stream::endpoint(std::string_view(name));
  }
  return stream::endpoint(path);
}

Address to_address(const stream::endpoint& ep) {
  std::string p = ep.path();
  if (!p.empty() && p[0] == '\0') p[0] = '@';
  return Address::unix_socket(std::move(p));
}

void log_exception(const char* what) {
  try {
    throw;
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("exception in ") + what + ": " + e.what());
  } catch (...) {
    log(LogLevel::error, std::string("non-standard exception in ") + what);
  }
}

std::shared_ptr<UnixTransport> start_transport(Reactor& reactor, stream::socket socket,
                                               const Address& host, const Address& peer,
                                               std::unique_ptr<Protocol> protocol,
                                               UnixTransport::LostHook on_lost = {}) {
  auto transport = std::make_shared<UnixTransport>(reactor, std::move(socket), host, peer);
  transport->start(std::move(protocol), std::move(on_lost));
  return transport;
}

// True when something accepts connections on `ep` (a blocking connect to a local socket
// answers at once: refused for a stale file).
bool somebody_listens(const stream::endpoint& ep) {
  asio::io_context io;
  stream::socket probe(io);
  std::error_code ec;
  probe.connect(ep, ec);
  return !ec || ec != asio::error::connection_refused;
}

class UnixPort final : public ListeningPort, public std::enable_shared_from_this<UnixPort> {
 public:
  UnixPort(Reactor& reactor, Factory& factory)
      : reactor_(reactor), factory_(factory), acceptor_(reactor.context()),
        pending_(reactor.context()) {}

  ~UnixPort() override { remove_file(); }

  void open(const std::string& path, const UnixListenOptions& options, std::error_code& ec) {
    const auto ep = to_endpoint(path, "listen_unix");
    const bool abstract = path[0] == '@';
    acceptor_.open(stream(), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (ec == asio::error::address_in_use && !abstract && options.remove_stale) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && !somebody_listens(ep)) {
        log(LogLevel::info, "listen_unix: removing stale socket file " + path);
        ::unlink(path.c_str());
        ec.clear();
        acceptor_.bind(ep, ec);
      }
    }
    if (!ec && !abstract) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0) {
        file_ = path;
        dev_ = st.st_dev;
        ino_ = st.st_ino;
      }
      if (options.mode >= 0 && ::chmod(path.c_str(), static_cast<mode_t>(options.mode)) != 0)
        ec = std::error_code(errno, std::system_category());
    }
    if (!ec) acceptor_.listen(options.backlog, ec);
    if (ec) {
      std::error_code ignored;
      acceptor_.close(ignored);
      remove_file();
      return;
    }
    host_ = Address::unix_socket(path);
    listening_ = true;
    accept_next();
  }

  Address get_host() const override { return host_; }
  bool listening() const override { return listening_; }

  void stop_listening() override {
    if (!listening_) return;
    listening_ = false;
    backoff_.cancel();
    std::error_code ec;
    acceptor_.close(ec);
    remove_file();
  }

 private:
  // Removes the socket file if it is still the one this port bound (another server may
  // have replaced it since).
  void remove_file() {
    if (file_.empty()) return;
    struct stat st {};
    if (::lstat(file_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
      ::unlink(file_.c_str());
    file_.clear();
  }

  void accept_next() {
    acceptor_.async_accept(pending_, [self = shared_from_this()](const std::error_code& ec) {
      self->on_accept(ec);
    });
  }

  void on_accept(const std::error_code& ec) {
    if (!listening_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      log(LogLevel::warning, "accept on " + host_.to_string() + " failed: " + ec.message() +
                                 "; retrying in 0.1 s");
      std::weak_ptr<UnixPort> weak = shared_from_this();
      backoff_ = reactor_.call_later(0.1, [weak] {
        if (auto self = weak.lock(); self && self->listening_) self->accept_next();
      });
      return;
    }
    std::error_code pec;
    const auto remote = pending_.remote_endpoint(pec);
    const Address peer = pec ? Address::unix_socket("") : to_address(remote);
    std::unique_ptr<Protocol> protocol;
    try {
      protocol = factory_.build_protocol(peer);
    } catch (...) {
      log_exception("build_protocol");
    }
    if (protocol) {
      start_transport(reactor_, std::move(pending_), host_, peer, std::move(protocol));
    } else {
      std::error_code ignored;
      pending_.close(ignored);
    }
    pending_ = stream::socket(reactor_.context());
    if (listening_) accept_next();
  }

  Reactor& reactor_;
  Factory& factory_;
  stream::acceptor acceptor_;
  stream::socket pending_;
  Address host_;
  std::string file_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool listening_ = false;
  DelayedCall backoff_;
};

class UnixConnector final : public Connector,
                            public std::enable_shared_from_this<UnixConnector> {
 public:
  UnixConnector(Reactor& reactor, std::string path, ClientFactory& factory,
                const UnixConnectOptions& options)
      : reactor_(reactor), path_(std::move(path)), endpoint_(to_endpoint(path_, "connect_unix")),
        factory_(factory), options_(options), socket_(reactor.context()) {}

  Address get_destination() const override { return Address::unix_socket(path_); }

  void connect() override {
    if (state_ != State::idle) return;
    state_ = State::connecting;
    const auto attempt = ++attempt_;
    asio::post(reactor_.context(), [self = shared_from_this(), attempt] { self->begin(attempt); });
  }

  void disconnect() override {
    if (state_ == State::connecting) {
      const auto attempt = attempt_;
      asio::post(reactor_.context(), [self = shared_from_this(), attempt] {
        if (self->attempt_ == attempt && self->state_ == State::connecting)
          self->fail(Reason(error::cancelled, {}, "disconnect() while connecting"));
      });
    } else if (state_ == State::connected) {
      if (auto t = transport_.lock()) t->lose_connection();
    }
  }

 private:
  enum class State { idle, connecting, connected };

  void begin(std::uint64_t attempt) {
    if (attempt != attempt_ || state_ != State::connecting) return;
    try {
      factory_.started_connecting(*this);
    } catch (...) {
      log_exception("started_connecting");
    }
    if (attempt != attempt_ || state_ != State::connecting) return;
    if (options_.timeout > 0) {
      std::weak_ptr<UnixConnector> weak = shared_from_this();
      timeout_ = reactor_.call_later(options_.timeout, [weak, attempt] {
        auto self = weak.lock();
        if (!self || self->attempt_ != attempt || self->state_ != State::connecting) return;
        self->fail(Reason(error::timed_out, {}, "connecting to " + self->path_));
      });
    }
    std::error_code ignored;
    socket_.close(ignored);
    socket_.async_connect(endpoint_, [self = shared_from_this(), attempt](const std::error_code& ec) {
      if (attempt != self->attempt_ || self->state_ != State::connecting) return;
      if (ec) {
        Reason r = Reason::from_os_error(ec, self->path_);
        if (r.is(error::connection_lost)) r = Reason(error::connect_failed, ec, self->path_);
        self->fail(r);
        return;
      }
      self->connected();
    });
  }

  void connected() {
    timeout_.cancel();
    const Address peer = Address::unix_socket(path_);
    std::unique_ptr<Protocol> protocol;
    try {
      protocol = factory_.build_protocol(peer);
    } catch (...) {
      log_exception("build_protocol");
    }
    if (!protocol) {
      fail(Reason(error::refused_by_factory));
      return;
    }
    state_ = State::connected;
    std::error_code ec;
    const auto local = socket_.local_endpoint(ec);
    transport_ = start_transport(reactor_, std::move(socket_),
                                 ec ? Address::unix_socket("") : to_address(local), peer,
                                 std::move(protocol), [self = shared_from_this()](const Reason& r) {
                                   self->state_ = State::idle;
                                   self->factory_.client_connection_lost(*self, r);
                                 });
    socket_ = stream::socket(reactor_.context());
  }

  void fail(const Reason& reason) {
    ++attempt_;
    state_ = State::idle;
    timeout_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
    try {
      factory_.client_connection_failed(*this, reason);
    } catch (...) {
      log_exception("client_connection_failed");
    }
  }

  Reactor& reactor_;
  std::string path_;
  stream::endpoint endpoint_;
  ClientFactory& factory_;
  UnixConnectOptions options_;
  stream::socket socket_;
  DelayedCall timeout_;
  std::weak_ptr<UnixTransport> transport_;
  State state_ = State::idle;
  std::uint64_t attempt_ = 0;
};

}  // namespace

std::shared_ptr<ListeningPort> listen_unix(Reactor& reactor, const std::string& path,
                                           Factory& factory, const UnixListenOptions& options,
                                           std::error_code& ec) {
  if (options.backlog < 1)
    throw std::invalid_argument("listen_unix: backlog must be >= 1, got " +
                                std::to_string(options.backlog));
  to_endpoint(path, "listen_unix");  // validates before anything is created
  auto port = std::make_shared<UnixPort>(reactor, factory);
  port->open(path, options, ec);
  if (ec) {
    ec = normalize_os_error(ec);
    return nullptr;
  }
  return port;
}

std::shared_ptr<ListeningPort> listen_unix(Reactor& reactor, const std::string& path,
                                           Factory& factory, const UnixListenOptions& options) {
  std::error_code ec;
  auto port = listen_unix(reactor, path, factory, options, ec);
  if (ec) throw std::system_error(ec, "listen_unix on " + path);
  return port;
}

std::shared_ptr<Connector> connect_unix(Reactor& reactor, const std::string& path,
                                        ClientFactory& factory,
                                        const UnixConnectOptions& options) {
  if (std::isnan(options.timeout) || options.timeout < 0)
    throw std::invalid_argument("connect_unix: timeout must be >= 0 seconds, got " +
                                std::to_string(options.timeout));
  auto connector = std::make_shared<UnixConnector>(reactor, path, factory, options);
  connector->connect();
  return connector;
}

std::optional<PeerCredentials> peer_credentials(const Transport& transport) {
  const int fd = transport.native_handle();
  if (fd < 0) return std::nullopt;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      addr.ss_family != AF_UNIX)
    return std::nullopt;
  ucred cred{};
  socklen_t clen = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) return std::nullopt;
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

}  // namespace torsion
