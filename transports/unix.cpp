#include "transports/unix.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/local/stream_protocol.hpp>
#include <cmath>
#include <stdexcept>
#include <string>

#include "transports/detail/stream_connector.hpp"
#include "transports/detail/stream_port.hpp"

namespace torsion {
namespace {

using stream = asio::local::stream_protocol;

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

// True when something accepts connections on `ep` (a blocking connect to a local socket
// answers at once: refused for a stale file).
bool somebody_listens(const stream::endpoint& ep) {
  asio::io_context io;
  stream::socket probe(io);
  std::error_code ec;
  probe.connect(ep, ec);
  return !ec || ec != asio::error::connection_refused;
}

class UnixPort final : public detail::StreamPort<stream> {
 public:
  UnixPort(Reactor& reactor, Factory& factory) : StreamPort(reactor, factory) {}

  ~UnixPort() override { remove_file(); }

  void open(const std::string& path, const UnixListenOptions& options, std::error_code& ec) {
    const auto ep = to_endpoint(path, "listen_unix");
    const bool abstract = path[0] == '@';
    auto& listener = acceptor();
    listener.open(stream(), ec);
    if (!ec) listener.bind(ep, ec);
    if (ec == asio::error::address_in_use && !abstract && options.remove_stale) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && !somebody_listens(ep)) {
        log(LogLevel::info, "listen_unix: removing stale socket file " + path);
        ::unlink(path.c_str());
        ec.clear();
        listener.bind(ep, ec);
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
    if (!ec) listener.listen(options.backlog, ec);
    if (ec) {
      std::error_code ignored;
      listener.close(ignored);
      remove_file();
      return;
    }
    start(Address::unix_socket(path));
  }

 private:
  void accepted(stream::socket socket, const Address& peer) override {
    if (auto protocol = detail::build_server_protocol(factory_, peer))
      detail::make_stream_engine(reactor_, std::move(socket), peer)->start(std::move(protocol));
  }

  void stopped() override { remove_file(); }

  // Removes the socket file if it is still the one this port bound (another server may
  // have replaced it since).
  void remove_file() {
    if (file_.empty()) return;
    struct stat st {};
    if (::lstat(file_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
      ::unlink(file_.c_str());
    file_.clear();
  }

  std::string file_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

class UnixConnector final : public detail::StreamConnector<stream> {
 public:
  UnixConnector(Reactor& reactor, const std::string& path, ClientFactory& factory,
                const UnixConnectOptions& options)
      : StreamConnector(reactor, factory, Address::unix_socket(path),
                        detail::ConnectTiming::within(options.timeout),
                        to_endpoint(path, "connect_unix")) {}

 private:
  void established(std::uint64_t, stream::socket socket, const stream::endpoint& ep) override {
    attach(detail::make_stream_engine(reactor_, std::move(socket), detail::to_address(ep)));
  }
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
  return detail::opened(reactor, std::move(port), ec);
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
