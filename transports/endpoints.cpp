#include "transports/endpoints.hpp"

#include <asio/ip/address.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "transports/systemd.hpp"
#include "transports/tcp.hpp"
#include "transports/unix.hpp"

namespace torsion {

ServerEndpoint::~ServerEndpoint() = default;
ClientEndpoint::~ClientEndpoint() = default;

std::shared_ptr<ListeningPort> ServerEndpoint::listen(Factory& factory) {
  std::error_code ec;
  auto port = listen(factory, ec);
  if (ec) throw std::system_error(ec, "listening on '" + description() + "'");
  return port;
}

namespace {

// --- tcp -----------------------------------------------------------------------------

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// tcp: and tcp6: (whose interface is IPv6, "::" by default, as Twisted's TCP6ServerEndpoint).
class TcpServerEndpoint final : public ServerEndpoint {
 public:
  TcpServerEndpoint(Reactor& reactor, int port, TcpListenOptions options, const char* type)
      : reactor_(reactor), port_(port), options_(std::move(options)), type_(type) {}

  using ServerEndpoint::listen;
  std::shared_ptr<ListeningPort> listen(Factory& factory, std::error_code& ec) override {
    return listen_tcp(reactor_, port_, factory, options_, ec);
  }

  std::string description() const override {
    std::string d = type_ + std::to_string(port_);
    if (!options_.interface.empty()) d += ":interface=" + escape_endpoint_value(options_.interface);
    d += ":backlog=" + std::to_string(options_.backlog);
    if (options_.reuse_port) d += ":reuse_port=true";
    return d;
  }

 private:
  Reactor& reactor_;
  int port_;
  TcpListenOptions options_;
  std::string type_;  // "tcp:" or "tcp6:"
};

// tcp: and tcp6: (IPv6 addresses only, as Twisted's TCP6ClientEndpoint).
class TcpClientEndpoint final : public ClientEndpoint {
 public:
  TcpClientEndpoint(Reactor& reactor, std::string host, int port, TcpConnectOptions options)
      : reactor_(reactor), host_(std::move(host)), port_(port), options_(std::move(options)) {}

  std::shared_ptr<Connector> connect(ClientFactory& factory) override {
    return connect_tcp(reactor_, host_, port_, factory, options_);
  }

  std::string description() const override {
    std::string d = options_.family == Address::Family::ipv6 ? "tcp6" : "tcp";
    d += ":host=" + escape_endpoint_value(host_) + ":port=" + std::to_string(port_) +
         ":timeout=" + format_seconds(options_.timeout);
    if (options_.bind) d += ":bindAddress=" + escape_endpoint_value(options_.bind->host());
    return d;
  }

 private:
  Reactor& reactor_;
  std::string host_;
  int port_;
  TcpConnectOptions options_;
};

// A numeric address for `parameter`: IPv6 when `v6`, else either family (empty stays empty).
std::string numeric_address(EndpointDescription& d, const char* parameter, bool v6) {
  std::string text = d.string(parameter, "");
  if (text.empty()) return text;
  std::error_code ec;
  const auto address = asio::ip::make_address(text, ec);
  if (ec) throw d.error(parameter, text, "must be a numeric IPv4 or IPv6 address");
  if (v6 && !address.is_v6()) throw d.error(parameter, text, "must be a numeric IPv6 address (tcp6)");
  return text;
}

std::unique_ptr<ServerEndpoint> parse_tcp_server(Reactor& reactor, EndpointDescription& d, bool v6) {
  d.name_positional({"port"});
  d.check_known({"port", "interface", "backlog", "reuse_port"});
  const long port = d.required_integer("port", 0, 65535);
  TcpListenOptions options;
  options.interface = numeric_address(d, "interface", v6);
  if (v6 && options.interface.empty()) options.interface = "::";
  options.backlog = static_cast<int>(d.integer("backlog", 1, 65535, options.backlog));
  options.reuse_port = d.boolean("reuse_port", false);
  return std::make_unique<TcpServerEndpoint>(reactor, static_cast<int>(port), std::move(options),
                                             v6 ? "tcp6:" : "tcp:");
}

std::unique_ptr<ClientEndpoint> parse_tcp_client(Reactor& reactor, EndpointDescription& d, bool v6) {
  d.name_positional({"host", "port"});
  d.check_known({"host", "port", "timeout", "bindAddress"});
  std::string host = d.required("host");
  const long port = d.required_integer("port", 1, 65535);
  TcpConnectOptions options;
  options.timeout = d.number("timeout", 0, 86400 * 365, options.timeout);
  if (v6) {
    options.family = Address::Family::ipv6;
    std::error_code ec;
    const auto numeric = asio::ip::make_address(host, ec);
    if (!ec && !numeric.is_v6()) throw d.error("host", host, "must be an IPv6 address or a name (tcp6)");
  }
  // As Twisted's: a local host to connect from, its port left to the kernel.
  const std::string bind = numeric_address(d, "bindAddress", v6);
  if (!bind.empty()) {
    options.bind = Address::ip(bind, 0);
    std::error_code ec;
    const auto numeric = asio::ip::make_address(host, ec);
    if (!ec && numeric.is_v6() != (options.bind->family() == Address::Family::ipv6))
      throw d.error("bindAddress", bind, "must be of the host's family");
  }
  return std::make_unique<TcpClientEndpoint>(reactor, std::move(host), static_cast<int>(port),
                                             std::move(options));
}

// --- unix ----------------------------------------------------------------------------

constexpr std::size_t kMaxUnixPath = 107;  // sockaddr_un's sun_path, less the terminator

std::string unix_path(EndpointDescription& d) {
  std::string path = d.required("path");
  if (path.size() > kMaxUnixPath)
    throw d.error("path", path, "must be at most " + std::to_string(kMaxUnixPath) + " bytes");
  if (path.find('\0') != std::string::npos) throw d.error("path", path, "must not hold a NUL byte");
  return path;
}

class UnixServerEndpoint final : public ServerEndpoint {
 public:
  UnixServerEndpoint(Reactor& reactor, std::string path, UnixListenOptions options)
      : reactor_(reactor), path_(std::move(path)), options_(options) {}

  using ServerEndpoint::listen;
  std::shared_ptr<ListeningPort> listen(Factory& factory, std::error_code& ec) override {
    return listen_unix(reactor_, path_, factory, options_, ec);
  }

  std::string description() const override {
    std::string d = "unix:" + escape_endpoint_value(path_);
    if (options_.mode >= 0) {
      char mode[16];
      std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(options_.mode));
      d += std::string(":mode=") + mode;
    }
    d += ":backlog=" + std::to_string(options_.backlog);
    d += options_.remove_stale ? ":remove_stale=true" : ":remove_stale=false";
    return d;
  }

 private:
  Reactor& reactor_;
  std::string path_;
  UnixListenOptions options_;
};

class UnixClientEndpoint final : public ClientEndpoint {
 public:
  UnixClientEndpoint(Reactor& reactor, std::string path, UnixConnectOptions options)
      : reactor_(reactor), path_(std::move(path)), options_(options) {}

  std::shared_ptr<Connector> connect(ClientFactory& factory) override {
    return connect_unix(reactor_, path_, factory, options_);
  }

  std::string description() const override {
    return "unix:" + escape_endpoint_value(path_) + ":timeout=" + format_seconds(options_.timeout);
  }

 private:
  Reactor& reactor_;
  std::string path_;
  UnixConnectOptions options_;
};

std::unique_ptr<ServerEndpoint> parse_unix_server(Reactor& reactor, EndpointDescription& d) {
  d.name_positional({"path"});
  d.check_known({"path", "mode", "backlog", "remove_stale"});
  std::string path = unix_path(d);
  UnixListenOptions options;
  if (auto mode = d.get("mode")) {  // octal, as chmod takes it: mode=660
    const bool octal = !mode->empty() && mode->size() <= 4 &&
                       mode->find_first_not_of("01234567") == std::string::npos;
    if (!octal) throw d.error("mode", *mode, "must be octal permission bits such as 600 or 0660");
    options.mode = static_cast<int>(std::stoul(*mode, nullptr, 8));
  }
  options.backlog = static_cast<int>(d.integer("backlog", 1, 65535, options.backlog));
  options.remove_stale = d.boolean("remove_stale", options.remove_stale);
  return std::make_unique<UnixServerEndpoint>(reactor, std::move(path), options);
}

std::unique_ptr<ClientEndpoint> parse_unix_client(Reactor& reactor, EndpointDescription& d) {
  d.name_positional({"path"});
  d.check_known({"path", "timeout"});
  std::string path = unix_path(d);
  UnixConnectOptions options;
  options.timeout = d.number("timeout", 0, 86400 * 365, options.timeout);
  return std::make_unique<UnixClientEndpoint>(reactor, std::move(path), options);
}

// --- systemd ---------------------------------------------------------------------------
// systemd:index=N or systemd:name=NAME (a socket systemd passed, transports/systemd.hpp);
// a bare value is an index when it is a number, else a name. Twisted's domain= is
// accepted and ignored: the family is read from the socket.

class SystemdServerEndpoint final : public ServerEndpoint {
 public:
  SystemdServerEndpoint(Reactor& reactor, long index, std::string name)
      : reactor_(reactor), index_(index), name_(std::move(name)) {}

  using ServerEndpoint::listen;
  std::shared_ptr<ListeningPort> listen(Factory& factory, std::error_code& ec) override {
    if (index_ >= 0) return listen_systemd(reactor_, static_cast<std::size_t>(index_), factory, ec);
    return listen_systemd(reactor_, name_, factory, ec);
  }

  std::string description() const override {
    return index_ >= 0 ? "systemd:index=" + std::to_string(index_)
                       : "systemd:name=" + escape_endpoint_value(name_);
  }

 private:
  Reactor& reactor_;
  long index_;  // -1: by name
  std::string name_;
};

std::unique_ptr<ServerEndpoint> parse_systemd_server(Reactor& reactor, EndpointDescription& d) {
  d.name_positional({"socket"});
  d.check_known({"socket", "index", "name", "domain"});
  (void)d.string("domain", "");
  auto socket = d.get("socket");
  const bool numeric = socket && !socket->empty() && socket->size() <= 4 &&
                       socket->find_first_not_of("0123456789") == std::string::npos;
  const int given = (socket ? 1 : 0) + (d.get("index") ? 1 : 0) + (d.get("name") ? 1 : 0);
  if (given != 1) throw d.error("index", "", "give exactly one of index=N or name=NAME");
  // A number alone is an index, with the range index= has (description() prints index=).
  if (socket && numeric)
    return std::make_unique<SystemdServerEndpoint>(reactor, d.required_integer("socket", 0, 4095), "");
  if (d.get("index"))
    return std::make_unique<SystemdServerEndpoint>(reactor, d.required_integer("index", 0, 4095), "");
  std::string name = socket ? *socket : d.required("name");
  if (name.empty() || name.size() > 255) throw d.error("name", name, "must be 1..255 bytes");
  return std::make_unique<SystemdServerEndpoint>(reactor, -1, std::move(name));
}

// --- the registry ---------------------------------------------------------------------
// A new transport adds its parsers to the built-in lists below (one line each), so that
// they exist without any registration call: self-registering statics in a static library
// are dropped by the linker when nothing else refers to their object file.

struct Registry {
  std::mutex mutex;
  std::map<std::string, ServerEndpointParser, std::less<>> servers{
      {"tcp", [](Reactor& r, EndpointDescription& d) { return parse_tcp_server(r, d, false); }},
      {"tcp6", [](Reactor& r, EndpointDescription& d) { return parse_tcp_server(r, d, true); }},
      {"unix", parse_unix_server},
      {"systemd", parse_systemd_server},
  };
  std::map<std::string, ClientEndpointParser, std::less<>> clients{
      {"tcp", [](Reactor& r, EndpointDescription& d) { return parse_tcp_client(r, d, false); }},
      {"tcp6", [](Reactor& r, EndpointDescription& d) { return parse_tcp_client(r, d, true); }},
      {"unix", parse_unix_client},
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

void check_type_name(const std::string& type, const char* what) {
  if (type.empty() || type.find_first_of(":=\\") != std::string::npos)
    throw std::invalid_argument(std::string(what) + ": endpoint type must be non-empty, without " +
                                "':', '=' or '\\', got '" + type + "'");
}

template <class Map>
std::vector<std::string> keys(Map& map, std::mutex& mutex) {
  std::lock_guard lock(mutex);
  std::vector<std::string> out;
  for (const auto& entry : map) out.push_back(entry.first);
  return out;
}

template <class Map>
auto find_parser(Map& map, std::mutex& mutex, const EndpointDescription& d, const char* side) {
  std::lock_guard lock(mutex);
  const auto it = map.find(d.type());
  if (it == map.end() && (d.type() == "ssl" || d.type() == "tls"))
    throw d.error("type", d.type(),
                  "needs TLS, which is not registered: call torsion::register_tls_endpoints() "
                  "(transports/tls_endpoints.hpp) once at start-up, and link the torsion_tls "
                  "library (meson: torsion_tls_dep), which brings in OpenSSL");
  if (it == map.end()) {
    std::string known;
    for (const auto& entry : map) known += (known.empty() ? "" : ", ") + entry.first;
    throw d.error("type", d.type(),
                  std::string("is not a known ") + side + " endpoint type (known: " + known + ")");
  }
  return it->second;  // a copy: the parser runs without the lock held
}

// Registers `parser` for `type` in `map` (the servers' or the clients' registry).
template <class Map, class Parser>
void add_parser(Map Registry::*map, std::string type, Parser parser, const char* what) {
  check_type_name(type, what);
  if (!parser) throw std::invalid_argument(std::string(what) + ": empty parser for " + type);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  (r.*map)[std::move(type)] = std::move(parser);
}

// The endpoint `description` makes with the parser `map` has for its type.
template <class Map>
auto from_string(Map Registry::*map, Reactor& reactor, std::string_view description,
                 const char* side) {
  auto d = EndpointDescription::parse(description);
  auto& r = registry();
  auto parser = find_parser(r.*map, r.mutex, d, side);
  auto endpoint = parser(reactor, d);
  if (!endpoint) throw d.error("type", d.type(), "has a parser that returned no endpoint");
  return endpoint;
}

// Removes `type` from `map`; false if it was not there.
template <class Map>
bool remove_parser(Map Registry::*map, std::string_view type) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = (r.*map).find(type);
  if (it == (r.*map).end()) return false;
  (r.*map).erase(it);
  return true;
}

}  // namespace

void register_server_endpoint(std::string type, ServerEndpointParser parser) {
  add_parser(&Registry::servers, std::move(type), std::move(parser), "register_server_endpoint");
}

void register_client_endpoint(std::string type, ClientEndpointParser parser) {
  add_parser(&Registry::clients, std::move(type), std::move(parser), "register_client_endpoint");
}

bool unregister_server_endpoint(std::string_view type) {
  return remove_parser(&Registry::servers, type);
}

bool unregister_client_endpoint(std::string_view type) {
  return remove_parser(&Registry::clients, type);
}

std::vector<std::string> server_endpoint_types() {
  auto& r = registry();
  return keys(r.servers, r.mutex);
}

std::vector<std::string> client_endpoint_types() {
  auto& r = registry();
  return keys(r.clients, r.mutex);
}

Deferred<Stream> connect_stream(Reactor& reactor, ClientEndpoint& endpoint, StreamOptions options) {
  return connect_stream_with(
      reactor, [&](ClientFactory& factory) { return endpoint.connect(factory); }, options);
}

std::function<Deferred<Protocol*>(std::unique_ptr<Protocol>)> protocol_connector(
    Reactor& reactor, std::string_view description) {
  std::shared_ptr<ClientEndpoint> endpoint = client_from_string(reactor, description);
  return [&reactor, endpoint](std::unique_ptr<Protocol> protocol) {
    return connect_protocol_with(
        reactor, [&](ClientFactory& factory) { return endpoint->connect(factory); },
        std::move(protocol));
  };
}

std::unique_ptr<ServerEndpoint> server_from_string(Reactor& reactor, std::string_view description) {
  return from_string(&Registry::servers, reactor, description, "server");
}

std::unique_ptr<ClientEndpoint> client_from_string(Reactor& reactor, std::string_view description) {
  return from_string(&Registry::clients, reactor, description, "client");
}

}  // namespace torsion
