#include "web/http_client.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "transports/tcp.hpp"
#if defined(TORSION_WEB_TLS)
#include "transports/tls.hpp"
#endif
#include "web/detail/url.hpp"
#include "web/http_parser.hpp"

namespace torsion::web {

namespace {

using detail::Target;

Target parse_url(const std::string& url) { return detail::parse_url(url, "http", "http_request"); }

}  // namespace

namespace detail {

class ClientConnection;
using Connection = ClientConnection;

// What an HttpPool shares with its requests and connections: the idle connections by
// "host:port". Connections remove themselves when they close or are destroyed.
struct PoolState {
  PoolState(Reactor& r, Scheduler& s, HttpPoolOptions o) : reactor(r), scheduler(s), options(o) {}
  Reactor& reactor;
  Scheduler& scheduler;
  HttpPoolOptions options;
  bool closed = false;
  std::map<std::string, std::vector<Connection*>, std::less<>> idle;
#if defined(TORSION_WEB_TLS)
  // One loaded trust store per CA file and connect time-out, shared by the connections.
  std::map<std::string, std::shared_ptr<const TlsClientContext>, std::less<>> tls_contexts;
#endif

  Connection* take(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end() || it->second.empty()) return nullptr;
    Connection* c = it->second.back();  // the most recently used: the least likely to have timed out
    it->second.pop_back();
    return c;
  }
  void forget(const Connection* c) {
    for (auto& [key, list] : idle) list.erase(std::remove(list.begin(), list.end(), c), list.end());
  }
};

}  // namespace detail

namespace {

using detail::Connection;
using detail::PoolState;

// One request: what to send, where, and its Deferred. Owned by whatever carries it at
// the moment (the Dialer connecting for it, then the Connection it is sent on); the
// Deferred's canceller holds it weakly.
class Call final : public std::enable_shared_from_this<Call> {
 public:
  Call(Reactor& reactor, std::shared_ptr<PoolState> pool, Target target, std::string request, bool head,
       bool idempotent, const HttpClientOptions& options)
      : reactor_(reactor), pool_(std::move(pool)), target_(std::move(target)), request_(std::move(request)),
        head_(head), idempotent_(idempotent), options_(options) {}

  Deferred<ClientResponse> start();
  // Sends on a new connection (the first try, or the one retry).
  void dial();

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
  // A reused connection was lost before any byte of the response: true if the call
  // went out again on a new connection.
  bool retry() {
    if (done_ || retried_ || !idempotent_) return false;
    retried_ = true;
    dial();
    return true;
  }

  // Connections are shared by scheme, host, port and (https) trust store.
  std::string key() const {
    return (target_.tls ? "https://" : "http://") + target_.host + ":" + std::to_string(target_.port) +
           (target_.tls ? " " + options_.ca_file : std::string());
  }
  const std::string& request() const { return request_; }
  bool head() const { return head_; }
  bool done() const { return done_; }
  const HttpClientOptions& options() const { return options_; }
  const std::shared_ptr<PoolState>& pool() const { return pool_; }
  const Target& target() const { return target_; }
  Connection* protocol_ = nullptr;
  std::shared_ptr<Connector> connector_;
#if defined(TORSION_WEB_TLS)
  std::shared_ptr<const TlsClientContext> tls_;  // for https
#endif

 private:
  void cancel();

  Reactor& reactor_;
  std::shared_ptr<PoolState> pool_;  // null: one connection for this call alone
  Target target_;
  std::string request_;
  bool head_;
  bool idempotent_;
  bool retried_ = false;
  HttpClientOptions options_;
  Deferred<ClientResponse> result_;
  bool done_ = false;
};

// The factory of one new connection; it keeps itself alive (self_) until the attempt
// fails, then the connection keeps it, since the connector refers to it.
class Dialer final : public ClientFactory, public std::enable_shared_from_this<Dialer> {
 public:
  explicit Dialer(std::shared_ptr<Call> call) : call_(std::move(call)) {}
  void start(Reactor& reactor) {
    self_ = shared_from_this();
    reactor_ = &reactor;
    const Target& target = call_->target();
#if defined(TORSION_WEB_TLS)
    if (target.tls) {
      call_->connector_ = connect_ssl(reactor, target.host, target.port, *this, call_->tls_);
      return;
    }
#endif
    TcpConnectOptions connect;
    connect.timeout = call_->options().connect_timeout;
    call_->connector_ = connect_tcp(reactor, target.host, target.port, *this, connect);
  }
  std::unique_ptr<Protocol> build_protocol(const Address&) override;
  // Once connected, the connection owns its factory (the connector calls the factory
  // after the protocol's connection_lost, before the protocol is destroyed).
  std::shared_ptr<Dialer> hand_over() { return std::move(self_); }
  void client_connection_failed(Connector&, const Reason& reason) override {
    if (call_) call_->fail(std::make_exception_ptr(ConnectionError(reason)));
    release();
  }
  void client_connection_lost(Connector&, const Reason&) override {}

 private:
  // Drops the self-reference from the loop, not from inside our own callback.
  void release() {
    call_.reset();
    if (self_) reactor_->call_soon([keep = std::move(self_)] {});
  }
  std::shared_ptr<Call> call_;
  std::shared_ptr<Dialer> self_;
  Reactor* reactor_ = nullptr;
};

}  // namespace

namespace detail {

// One HTTP connection: it carries one call at a time and, in a pool, waits idle between
// calls.
class ClientConnection final : public Protocol, HttpParser::Sink {
 public:
  ClientConnection(std::shared_ptr<PoolState> pool, std::string key, const HttpLimits& limits)
      : pool_(std::move(pool)), key_(std::move(key)), parser_(HttpParser::Kind::response, *this, limits) {}
  ~ClientConnection() override {
    if (call_) call_->protocol_ = nullptr;
    if (pool_) pool_->forget(this);
  }

  // Takes `call` and sends it (now if connected, else from connection_made).
  void assign(std::shared_ptr<Call> call, bool reused) {
    idle_timer_.cancel();
    call_ = std::move(call);
    call_->protocol_ = this;
    reused_ = reused;
    got_bytes_ = false;
    finished_ = false;
    response_ = ClientResponse();
    parser_.reset();
    parser_.expect_head_response(call_->head());
    if (has_transport()) transport().write(call_->request());
  }

  // The pool closes this idle connection.
  void close_idle() {
    idle_timer_.cancel();
    transport().lose_connection();
  }

  std::shared_ptr<void> owner_;  // the factory that made this connection

  void connection_made() override {
    if (call_) transport().write(call_->request());
  }
  void data_received(std::string_view data) override {
    if (!call_) {  // nothing asked: a server talking out of turn
      transport().abort_connection();
      return;
    }
    got_bytes_ = true;
    while (!data.empty() && !finished_) {
      data.remove_prefix(parser_.feed(data));
      if (parser_.failed()) {
        fail(std::make_exception_ptr(*parser_.error()));
        transport().abort_connection();
        return;
      }
    }
    if (finished_) finish(data.empty());
  }
  bool eof_received() override {
    if (!call_) {  // the server closed an idle connection: it leaves the pool
      idle_timer_.cancel();
      pool_->forget(this);
      return false;
    }
    parser_.feed_eof();  // completes a body delimited by the close
    if (finished_)
      finish(false);  // not reusable
    else
      lost(Reason(error::connection_lost, {}, "the server closed the connection before the response ended"));
    return false;
  }
  void connection_lost(const Reason& reason) override {
    idle_timer_.cancel();
    if (pool_) pool_->forget(this);
    if (call_) lost(reason);
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
    finished_ = true;
  }

 private:
  // The call's response is complete; `clean` when no byte followed it and the close did
  // not delimit it. The connection goes back to the pool before the Deferred fires, so a
  // request made from its callback can reuse it.
  void finish(bool clean) {
    auto call = std::move(call_);
    call->protocol_ = nullptr;
    const Headers& h = response_.headers;
    const bool keep = clean && pool_ && !pool_->closed && response_.status != 101 &&
                      (response_.version_minor == 1 ? !h.has_token("connection", "close")
                                                    : h.has_token("connection", "keep-alive"));
    if (keep && pool_->idle[key_].size() < pool_->options.max_idle_per_host) {
      pool_->idle[key_].push_back(this);
      if (pool_->options.idle_timeout > 0)
        idle_timer_ = pool_->scheduler.call_later(pool_->options.idle_timeout, [this] {
          pool_->forget(this);
          transport().lose_connection();
        });
    } else {
      transport().lose_connection();
    }
    call->succeed(std::move(response_));
  }
  void fail(std::exception_ptr error) {
    if (auto call = std::move(call_)) {
      call->protocol_ = nullptr;
      call->fail(std::move(error));
    }
  }
  // The connection ended under the call.
  void lost(const Reason& reason) {
    auto call = std::move(call_);
    call->protocol_ = nullptr;
    if (reused_ && !got_bytes_ && call->retry()) return;
    call->fail(std::make_exception_ptr(ConnectionError(reason)));
  }

  std::shared_ptr<PoolState> pool_;
  std::string key_;
  HttpParser parser_;
  std::shared_ptr<Call> call_;
  ClientResponse response_;
  ScopedDelayedCall idle_timer_;  // never fires after the connection is gone
  bool reused_ = false;
  bool got_bytes_ = false;
  bool finished_ = false;
};

}  // namespace detail

namespace {

std::unique_ptr<Protocol> Dialer::build_protocol(const Address&) {
  auto call = std::move(call_);
  if (!call || call->done()) return nullptr;  // cancelled while connecting
  auto connection = std::make_unique<Connection>(call->pool(), call->key(), call->options().limits);
  connection->assign(std::move(call), false);
  connection->owner_ = hand_over();
  return connection;
}

Deferred<ClientResponse> Call::start() {
  std::weak_ptr<Call> weak = weak_from_this();
  result_ = Deferred<ClientResponse>([weak](Deferred<ClientResponse>&) {
    if (auto call = weak.lock()) call->cancel();
  });
  if (options_.response_timeout > 0) result_.add_timeout(options_.connect_timeout + options_.response_timeout, reactor_);
  auto keep = result_;  // a reused connection may answer before start() returns
  Connection* idle = pool_ ? pool_->take(key()) : nullptr;
  if (idle)
    idle->assign(shared_from_this(), true);
  else
    dial();
  return keep;
}

void Call::dial() {
  auto dialer = std::make_shared<Dialer>(shared_from_this());
  dialer->start(reactor_);
}

void Call::cancel() {
  done_ = true;
  if (connector_) connector_->disconnect();
  if (protocol_ && protocol_->has_transport()) protocol_->transport().abort_connection();
}

std::string request_bytes(const std::string& method, const Target& target, Headers& headers,
                          const std::string& body, bool close) {
  std::string request = method + " " + target.path + " HTTP/1.1\r\n";
  if (!headers.has("host")) {
    request += "Host: ";
    request += detail::host_field(target);
    request += "\r\n";
  }
  headers.remove("connection");
  headers.remove("content-length");
  headers.remove("transfer-encoding");
  for (const auto& [name, value] : headers.fields()) request += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (close) request += "Connection: close\r\n";
  request += "\r\n";
  request += body;
  return request;
}

#if defined(TORSION_WEB_TLS)
// The client context for https with `options` (verification on): a pool loads each
// once, a lone request for itself.
std::shared_ptr<const TlsClientContext> tls_context(PoolState* pool, const HttpClientOptions& options) {
  const std::string key = options.ca_file + "\n" + std::to_string(options.connect_timeout);
  if (pool) {
    auto it = pool->tls_contexts.find(key);
    if (it != pool->tls_contexts.end()) return it->second;
  }
  TlsClientOptions tls;
  tls.ca_file = options.ca_file;
  tls.timeout = options.connect_timeout;
  auto context = std::make_shared<const TlsClientContext>(tls);
  if (pool) pool->tls_contexts.emplace(key, context);
  return context;
}
#endif

Deferred<ClientResponse> send(Reactor& reactor, std::shared_ptr<PoolState> pool, std::string method,
                              const std::string& url, Headers headers, std::string body,
                              const HttpClientOptions& options) {
  Target target = parse_url(url);
  std::string request = request_bytes(method, target, headers, body, pool == nullptr);
  const bool idempotent = method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
                          method == "OPTIONS" || method == "TRACE";
#if defined(TORSION_WEB_TLS)
  std::shared_ptr<const TlsClientContext> tls;
  if (target.tls) tls = tls_context(pool.get(), options);
#endif
  auto call = std::make_shared<Call>(reactor, std::move(pool), std::move(target), std::move(request),
                                     method == "HEAD", idempotent, options);
#if defined(TORSION_WEB_TLS)
  call->tls_ = std::move(tls);
#endif
  return call->start();
}

}  // namespace

Deferred<ClientResponse> http_request(Reactor& reactor, std::string method, const std::string& url,
                                      Headers headers, std::string body, HttpClientOptions options) {
  return send(reactor, nullptr, std::move(method), url, std::move(headers), std::move(body), options);
}

Deferred<ClientResponse> http_request(Reactor& reactor, std::string method, const std::string& url,
                                      Headers headers, std::string body) {
  return send(reactor, nullptr, std::move(method), url, std::move(headers), std::move(body), HttpClientOptions());
}

HttpPool::HttpPool(Reactor& reactor, Scheduler& scheduler, HttpPoolOptions options)
    : state_(std::make_shared<PoolState>(reactor, scheduler, options)) {}

HttpPool::~HttpPool() {
  state_->closed = true;
  auto idle = std::move(state_->idle);
  state_->idle.clear();
  for (auto& [key, list] : idle)
    for (Connection* c : list) c->close_idle();
}

Deferred<ClientResponse> HttpPool::request(std::string method, const std::string& url, Headers headers,
                                           std::string body, HttpClientOptions options) {
  return send(state_->reactor, state_, std::move(method), url, std::move(headers), std::move(body), options);
}

Deferred<ClientResponse> HttpPool::request(std::string method, const std::string& url, Headers headers,
                                           std::string body) {
  return request(std::move(method), url, std::move(headers), std::move(body), HttpClientOptions());
}

std::size_t HttpPool::idle_count() const noexcept {
  std::size_t n = 0;
  for (const auto& [key, list] : state_->idle) n += list.size();
  return n;
}

}  // namespace torsion::web
