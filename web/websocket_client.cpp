#include "web/websocket_client.hpp"

#include <random>
#include <utility>

#include "framework/detail/protocol_scope.hpp"
#include "framework/stream.hpp"
#include "transports/tcp.hpp"
#if defined(TORSION_WEB_TLS)
#include "transports/tls.hpp"
#endif
#include "web/detail/url.hpp"
#include "web/detail/ws_deflate.hpp"
#include "web/detail/ws_setup.hpp"
#include "web/detail/ws_sha1.hpp"
#include "web/websocket_server.hpp"

namespace torsion::web {

namespace {

// One connection attempt, shared by the factory, the handshake protocol and the
// Deferred's canceller.
struct Attempt {
  Reactor* reactor = nullptr;
  WebSocketClientOptions options;
  detail::Target target;
  std::string key;
  std::shared_ptr<WebSocketProtocol> protocol;
  Deferred<std::shared_ptr<WebSocketProtocol>> result;
  std::weak_ptr<Connector> connector;  // the reactor keeps it while it is in use
  bool done = false;

  void fail(std::exception_ptr error) {
    if (done) return;
    done = true;
    result.errback(std::move(error));
  }
};

// Speaks HTTP until the 101, then passes everything to the WebSocketProtocol.
class ClientHandshake final : public Protocol {
 public:
  ClientHandshake(std::shared_ptr<Attempt> attempt, std::shared_ptr<ClientFactory> factory)
      : attempt_(std::move(attempt)), factory_(std::move(factory)) {}

  void connection_made() override {
    const auto& o = attempt_->options;
    std::string request = "GET " + attempt_->target.path + " HTTP/1.1\r\nHost: " +
                          detail::host_field(attempt_->target) +
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                          attempt_->key + "\r\nSec-WebSocket-Version: 13\r\n";
    if (!o.subprotocols.empty()) {
      request += "Sec-WebSocket-Protocol: ";
      for (std::size_t i = 0; i < o.subprotocols.size(); ++i)
        request += (i ? ", " : "") + o.subprotocols[i];
      request += "\r\n";
    }
    if (const std::string offer = detail::ws_deflate_offer(o.deflate); !offer.empty())
      request += "Sec-WebSocket-Extensions: " + offer + "\r\n";
    for (const auto& [name, value] : o.headers.fields()) request += name + ": " + value + "\r\n";
    request += "\r\n";
    transport().write(request);
    if (o.handshake_timeout > 0)
      timer_ = attempt_->reactor->call_later(o.handshake_timeout, guard([this] {
        if (upgraded_ || !has_transport()) return;
        attempt_->fail(std::make_exception_ptr(TimeoutError("WebSocket handshake timed out")));
        transport().abort_connection();
      }));
  }

  void data_received(std::string_view data) override {
    if (upgraded_) {
      if (ws().has_transport()) torsion::detail::data_to(ws(), data);
      return;
    }
    head_.append(data);
    const std::size_t end = head_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (head_.size() > attempt_->options.max_head) refuse(431, "the response head is too large");
      return;
    }
    if (end + 4 > attempt_->options.max_head) return refuse(431, "the response head is too large");
    if (!check(std::string_view(head_).substr(0, end + 2))) return;
    const std::string rest = head_.substr(end + 4);
    head_.clear();
    head_.shrink_to_fit();
    timer_.cancel();
    upgraded_ = true;
    detail::WsSetup::start(ws(), *attempt_->reactor, WsRole::client, subprotocol_,
                           deflate_accepted_ ? &deflate_ : nullptr, &attempt_->options.deflate);
    ws().make_connection(transport());
    if (!attempt_->done) {
      attempt_->done = true;
      attempt_->result.callback(attempt_->protocol);
    }
    if (!rest.empty() && ws().has_transport()) torsion::detail::data_to(ws(), rest);
  }

  bool eof_received() override { return upgraded_ && torsion::detail::eof_to(ws()); }

  void connection_lost(const Reason& reason) override {
    timer_.cancel();
    if (upgraded_) return ws().end_connection(reason);
    attempt_->fail(std::make_exception_ptr(ConnectionError(reason)));
  }

 private:
  WebSocketProtocol& ws() { return *attempt_->protocol; }

  void refuse(int status, const std::string& why) {
    attempt_->fail(std::make_exception_ptr(HttpError(status, "WebSocket handshake: " + why)));
    transport().abort_connection();
  }

  // Checks the response head (status line and fields, each ending in CRLF).
  bool check(std::string_view head) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 9) != "HTTP/1.1 ")
      return refuse(502, "not an HTTP/1.1 response"), false;
    const std::string_view code = status_line.substr(9, 3);
    if (code != "101") {
      const int status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
      return refuse(status >= 100 && status <= 999 ? status : 502,
                    "the server answered " + std::string(status_line.substr(9))),
             false;
    }
    Headers fields;
    for (std::size_t at = eol + 2; at < head.size();) {
      const std::size_t next = head.find("\r\n", at);
      const std::string_view line = head.substr(at, next - at);
      at = next + 2;
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return refuse(502, "a malformed field"), false;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      fields.add(std::string(line.substr(0, colon)), std::string(value));
    }
    if (!fields.has_token("Upgrade", "websocket") || !fields.has_token("Connection", "upgrade"))
      return refuse(502, "no Upgrade: websocket in the 101"), false;
    if (fields.get("Sec-WebSocket-Accept").value_or("") != websocket_accept(attempt_->key))
      return refuse(502, "wrong Sec-WebSocket-Accept"), false;
    if (const std::string why =
            detail::ws_deflate_check(fields, attempt_->options.deflate, deflate_, deflate_accepted_);
        !why.empty())
      return refuse(502, why), false;
    if (auto chosen = fields.get("Sec-WebSocket-Protocol")) {
      bool offered = false;
      for (const auto& p : attempt_->options.subprotocols) offered = offered || p == *chosen;
      if (!offered) return refuse(502, "a subprotocol that was not offered"), false;
      subprotocol_ = std::string(*chosen);
    }
    return true;
  }

  std::shared_ptr<Attempt> attempt_;
  // The factory that built this protocol: the connector calls it after connection_lost,
  // before the protocol is destroyed, so the connection keeps it.
  std::shared_ptr<ClientFactory> factory_;
  std::string head_;
  std::string subprotocol_;
  detail::WsDeflateAgreement deflate_;
  bool deflate_accepted_ = false;
  bool upgraded_ = false;
  DelayedCall timer_;
};

// The factory of the one connection. It keeps itself alive while connecting; the
// connection it builds then owns it. After a failed attempt it lets go from the loop,
// never inside its own callback.
class Dialer final : public ClientFactory, public std::enable_shared_from_this<Dialer> {
 public:
  explicit Dialer(std::shared_ptr<Attempt> attempt) : attempt_(std::move(attempt)) {}
  void keep_alive() { self_ = shared_from_this(); }
  std::unique_ptr<Protocol> build_protocol(const Address&) override {
    return std::make_unique<ClientHandshake>(attempt_, std::move(self_));
  }
  void client_connection_failed(Connector&, const Reason& reason) override {
    attempt_->fail(std::make_exception_ptr(ConnectionError(reason)));
    if (self_) attempt_->reactor->call_soon([keep = std::move(self_)] {});
  }

 private:
  std::shared_ptr<Attempt> attempt_;
  std::shared_ptr<Dialer> self_;
};

std::string new_key() {
  std::random_device device;
  unsigned char bytes[16];
  for (auto& b : bytes) b = static_cast<unsigned char>(device());
  return detail::base64(bytes, sizeof bytes);
}

}  // namespace

Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url,
                                                               std::shared_ptr<WebSocketProtocol> protocol,
                                                               const WebSocketClientOptions& options) {
  if (!protocol) throw std::invalid_argument("connect_websocket: no protocol");
  detail::check_deflate_options(options.deflate, "connect_websocket");
  auto attempt = std::make_shared<Attempt>();
  attempt->reactor = &reactor;
  attempt->target = detail::parse_url(url, "ws", "connect_websocket");
  attempt->options = options;
  attempt->key = new_key();
  attempt->protocol = std::move(protocol);
  std::weak_ptr<Attempt> weak = attempt;
  attempt->result = Deferred<std::shared_ptr<WebSocketProtocol>>([weak](auto&) {
    if (auto a = weak.lock()) {
      a->done = true;
      if (auto connector = a->connector.lock()) connector->disconnect();
    }
  });
  auto factory = std::make_shared<Dialer>(attempt);
  factory->keep_alive();
  auto result = attempt->result;
#if defined(TORSION_WEB_TLS)
  if (attempt->target.tls) {
    TlsClientOptions tls;
    tls.ca_file = attempt->options.ca_file;
    tls.timeout = attempt->options.connect_timeout;
    auto context = std::make_shared<const TlsClientContext>(tls);
    attempt->connector = connect_ssl(reactor, attempt->target.host, attempt->target.port, *factory, context);
  } else
#endif
  {
    TcpConnectOptions connect;
    connect.timeout = attempt->options.connect_timeout;
    attempt->connector = connect_tcp(reactor, attempt->target.host, attempt->target.port, *factory, connect);
  }
  return result;
}

Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url,
                                                               std::shared_ptr<WebSocketProtocol> protocol) {
  return connect_websocket(reactor, url, std::move(protocol), WebSocketClientOptions());
}

Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url,
                                                               const WebSocketClientOptions& options) {
  return connect_websocket(reactor, url, std::make_shared<WebSocketProtocol>(), options);
}

Deferred<std::shared_ptr<WebSocketProtocol>> connect_websocket(Reactor& reactor, const std::string& url) {
  return connect_websocket(reactor, url, std::make_shared<WebSocketProtocol>(), WebSocketClientOptions());
}

}  // namespace torsion::web
