#include "web/http_client.hpp"

#include <memory>
#include <stdexcept>

#include "transports/tcp.hpp"
#include "web/http_parser.hpp"

namespace torsion::web {

namespace {

struct Target {
  std::string host;
  int port = 80;
  std::string path;
};

Target parse_url(const std::string& url) {
  constexpr std::string_view http = "http://";
  if (url.rfind(http, 0) != 0)
    throw std::invalid_argument("http_request: '" + url + "' is not an http:// URL (https is not supported yet)");
  std::string_view rest = std::string_view(url).substr(http.size());
  const std::size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  Target t;
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (t.path.front() == '?') t.path.insert(0, "/");
  if (authority.find('@') != std::string_view::npos)
    throw std::invalid_argument("http_request: user information in '" + url + "' is not supported");
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("http_request: bad host in '" + url + "'");
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':')
      throw std::invalid_argument("http_request: bad host in '" + url + "'");
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (!authority.empty()) {
    const std::string digits(authority.substr(1));
    if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument("http_request: bad port in '" + url + "'");
    t.port = std::stoi(digits);
    if (t.port < 1 || t.port > 65535) throw std::invalid_argument("http_request: bad port in '" + url + "'");
  }
  if (host.empty()) throw std::invalid_argument("http_request: no host in '" + url + "'");
  t.host = std::string(host);
  for (char c : t.path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw std::invalid_argument("http_request: the path of '" + url + "' has a space or control character");
  return t;
}

// One request: the factory, the protocol and the Deferred's state. It keeps itself alive
// (self_) until the connection attempt or the connection is over.
class Call final : public ClientFactory, public std::enable_shared_from_this<Call> {
 public:
  Call(Reactor& reactor, std::string request, bool head, const HttpClientOptions& options)
      : reactor_(reactor), request_(std::move(request)), head_(head), options_(options) {}

  Deferred<ClientResponse> start(const Target& target) {
    self_ = shared_from_this();
    std::weak_ptr<Call> weak = self_;
    result_ = Deferred<ClientResponse>([weak](Deferred<ClientResponse>&) {
      if (auto call = weak.lock()) call->cancel();
    });
    TcpConnectOptions connect;
    connect.timeout = options_.connect_timeout;
    connector_ = connect_tcp(reactor_, target.host, target.port, *this, connect);
    if (options_.response_timeout > 0) result_.add_timeout(options_.connect_timeout + options_.response_timeout, reactor_);
    return result_;
  }

  std::unique_ptr<Protocol> build_protocol(const Address&) override;

  void client_connection_failed(Connector&, const Reason& reason) override {
    fail(std::make_exception_ptr(ConnectionError(reason)));
    release();
  }
  void client_connection_lost(Connector&, const Reason&) override { release(); }

  void succeed(ClientResponse response) {
    if (done_) return;
    done_ = true;
    result_.callback(std::move(response));
  }
  void fail(std::exception_ptr error) {
    if (done_) return;
    done_ = true;
    result_.errback(std::move(error));
  }

  const std::string& request() const { return request_; }
  bool head() const { return head_; }
  const HttpClientOptions& options() const { return options_; }
  Protocol* protocol_ = nullptr;

 private:
  void cancel() {
    done_ = true;
    if (connector_) connector_->disconnect();
    if (protocol_ && protocol_->has_transport()) protocol_->transport().abort_connection();
  }
  // Drops the self-reference from the loop, not from inside our own callback.
  void release() {
    if (self_) reactor_.call_soon([keep = std::move(self_)] {});
  }

  Reactor& reactor_;
  std::string request_;
  bool head_;
  HttpClientOptions options_;
  std::shared_ptr<Call> self_;
  std::shared_ptr<Connector> connector_;
  Deferred<ClientResponse> result_;
  bool done_ = false;
};

class ClientProtocol final : public Protocol, HttpParser::Sink {
 public:
  explicit ClientProtocol(std::shared_ptr<Call> call)
      : call_(std::move(call)), parser_(HttpParser::Kind::response, *this, call_->options().limits) {
    parser_.expect_head_response(call_->head());
    call_->protocol_ = this;
  }
  ~ClientProtocol() override { call_->protocol_ = nullptr; }

  void connection_made() override { transport().write(call_->request()); }
  void data_received(std::string_view data) override {
    while (!data.empty() && !complete_) {
      data.remove_prefix(parser_.feed(data));
      if (parser_.failed()) {
        call_->fail(std::make_exception_ptr(*parser_.error()));
        transport().abort_connection();
        return;
      }
    }
  }
  bool eof_received() override {
    if (!complete_ && !parser_.feed_eof() && parser_.error())
      call_->fail(std::make_exception_ptr(ConnectionError(
          Reason(error::connection_lost, {}, "the server closed the connection before the response ended"))));
    return false;
  }
  void connection_lost(const Reason& reason) override {
    if (!complete_) call_->fail(std::make_exception_ptr(ConnectionError(reason)));
  }

  void head_received(HttpHead& head) override {
    response_.status = head.status;
    response_.reason = std::move(head.reason);
    response_.version_minor = head.version_minor;
    response_.headers = std::move(head.headers);
  }
  void body_data(std::string_view data) override { response_.body.append(data); }
  void message_complete(const Headers&) override {
    if (response_.status / 100 == 1 && response_.status != 101) {  // interim: wait for the final one
      response_ = ClientResponse();
      parser_.expect_head_response(call_->head());
      return;
    }
    complete_ = true;
    call_->succeed(std::move(response_));
    transport().lose_connection();
  }

 private:
  std::shared_ptr<Call> call_;
  HttpParser parser_;
  ClientResponse response_;
  bool complete_ = false;
};

std::unique_ptr<Protocol> Call::build_protocol(const Address&) {
  if (done_) return nullptr;  // cancelled while connecting
  return std::make_unique<ClientProtocol>(shared_from_this());
}

}  // namespace

Deferred<ClientResponse> http_request(Reactor& reactor, std::string method, const std::string& url,
                                      Headers headers, std::string body, HttpClientOptions options) {
  const Target target = parse_url(url);
  std::string request = method + " " + target.path + " HTTP/1.1\r\n";
  if (!headers.has("host")) {
    const bool v6 = target.host.find(':') != std::string::npos;
    request += "Host: " + (v6 ? "[" + target.host + "]" : target.host);
    if (target.port != 80) request += ":" + std::to_string(target.port);
    request += "\r\n";
  }
  headers.remove("connection");
  headers.remove("content-length");
  headers.remove("transfer-encoding");
  for (const auto& [name, value] : headers.fields()) request += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "Connection: close\r\n\r\n";
  request += body;
  auto call = std::make_shared<Call>(reactor, std::move(request), method == "HEAD", options);
  return call->start(target);
}

}  // namespace torsion::web
