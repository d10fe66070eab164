#include "web/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "framework/delayed_call.hpp"
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

class Call;

}  // namespace

namespace detail {

class ClientConnection;
using Connection = ClientConnection;

// A streamed response body, shared by the connection reading it and the ClientResponse
// copies the user holds.
struct ResponseStream {
  ClientConnection* conn = nullptr;  // while the connection still reads this body
  std::size_t mark = 0;              // HttpClientOptions::body_buffer
  std::string buffer;                // arrived, not read yet
  bool ended = false;                // the body's last byte is in `buffer` (or was read)
  std::exception_ptr error;          // why the body cannot end
  std::optional<Deferred<std::string>> waiting;  // a read_some waiting for bytes
  bool full() const noexcept { return buffer.size() >= mark; }
  ~ResponseStream();
};

// Gives a waiting read what `stream` has: bytes, the error, or the end.
void deliver(ResponseStream& stream) {
  if (!stream.waiting || (stream.buffer.empty() && !stream.ended && !stream.error)) return;
  Deferred<std::string> reader = std::move(*stream.waiting);
  stream.waiting.reset();
  if (!stream.buffer.empty()) {
    std::string piece = std::move(stream.buffer);
    stream.buffer.clear();
    reader.callback(std::move(piece));
  } else if (stream.error) {
    reader.errback(stream.error);
  } else {
    reader.callback(std::string());
  }
}

// The connections of one scheme, host and port in a pool: how many are open, and the
// calls waiting for one.
struct HostSlots {
  std::size_t open = 0;
  std::deque<std::shared_ptr<Call>> queue;
};

// What an HttpPool shares with its requests and connections: the idle connections by
// "host:port". Connections remove themselves when they close or are destroyed.
struct PoolState {
  PoolState(Reactor& r, Scheduler& s, HttpPoolOptions o) : reactor(r), scheduler(s), options(o) {}
  Reactor& reactor;
  Scheduler& scheduler;
  HttpPoolOptions options;
  bool closed = false;
  std::map<std::string, std::vector<Connection*>, std::less<>> idle;
  std::map<std::string, HostSlots, std::less<>> hosts;
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
  bool can_open(const std::string& key) {
    return options.max_per_host == 0 || hosts[key].open < options.max_per_host;
  }
  // The next queued call for `key` that is still waiting, or null.
  std::shared_ptr<Call> next_queued(const std::string& key);
};

// One connection's place among its host's max_per_host; given back when destroyed.
class Slot {
 public:
  Slot(std::shared_ptr<PoolState> pool, std::string key) : pool_(std::move(pool)), key_(std::move(key)) {
    ++pool_->hosts[key_].open;
  }
  ~Slot();
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  std::shared_ptr<PoolState> pool_;
  std::string key_;
};

}  // namespace detail

namespace {

using detail::Connection;
using detail::PoolState;

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Where a Location field points, as an absolute URL, from the request's `base`.
std::string resolve_location(const Target& base, std::string_view location) {
  const std::string scheme = base.tls ? "https" : "http";
  const auto starts = [&](std::string_view prefix) {
    return location.size() >= prefix.size() && iequals(location.substr(0, prefix.size()), prefix);
  };
  if (starts("http://") || starts("https://")) {
    const std::size_t colon = location.find(':');
    std::string url(location);
    for (std::size_t i = 0; i < colon; ++i) url[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(url[i])));
    return url;
  }
  if (starts("//")) return scheme + ":" + std::string(location);
  const std::string origin = scheme + "://" + detail::host_field(base);
  if (starts("/")) return origin + std::string(location);
  const std::string_view path = std::string_view(base.path).substr(0, base.path.find('?'));
  if (starts("?")) return origin + std::string(path) + std::string(location);
  return origin + std::string(path.substr(0, path.rfind('/') + 1)) + std::string(location);
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

bool idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
         method == "TRACE";
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

// One request: what to send, where, and its Deferred. Owned by whatever carries it at
// the moment (the Dialer connecting for it, the pool's queue, then the Connection it is
// sent on); the Deferred's canceller holds it weakly. A redirect sends it again, to the
// new URL, with the same Deferred.
class Call final : public std::enable_shared_from_this<Call> {
 public:
  Call(Reactor& reactor, std::shared_ptr<PoolState> pool, std::string method, std::string url, Headers headers,
       std::string body, const HttpClientOptions& options)
      : reactor_(reactor), pool_(std::move(pool)), method_(std::move(method)), url_(std::move(url)),
        headers_(std::move(headers)), body_(std::move(body)), options_(options) {
    if (options_.body_buffer == 0) throw std::invalid_argument("http_request: body_buffer must be at least 1");
    aim(parse_url(url_));
  }

  Deferred<ClientResponse> start();
  // Sends on a new connection (the first try, or the one retry).
  void dial();

  // The response (or, streamed, its head) is in: the result, or the next hop of a
  // redirect.
  void succeed(ClientResponse response) {
    if (done_) return;
    if (follows(response)) {
      if (redirects_ >= options_.max_redirects)
        return fail(std::make_exception_ptr(HttpError(
            response.status, "too many redirects (more than " + std::to_string(options_.max_redirects) + ")")));
      try {
        redirect(response);
      } catch (const std::exception& e) {
        fail(std::make_exception_ptr(HttpError(response.status, std::string("cannot follow the redirect: ") + e.what())));
      }
      return;
    }
    response.url = url_;
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
    if (done_ || retried_ || !idempotent(method_)) return false;
    retried_ = true;
    dial();
    return true;
  }
  // True if `response` is a redirect this call follows (when its body has ended).
  bool follows(const ClientResponse& response) const {
    return options_.max_redirects > 0 && is_redirect(response.status) && response.headers.has("location");
  }
  bool follows(int status, const Headers& headers) const {
    return options_.max_redirects > 0 && is_redirect(status) && headers.has("location");
  }

  // Connections are shared by scheme, host, port and (https) trust store.
  std::string key() const {
    return (target_.tls ? "https://" : "http://") + target_.host + ":" + std::to_string(target_.port) +
           (target_.tls ? " " + options_.ca_file : std::string());
  }
  const std::string& request() const { return request_; }
  bool head() const { return method_ == "HEAD"; }
  bool done() const { return done_; }
  const HttpClientOptions& options() const { return options_; }
  const std::shared_ptr<PoolState>& pool() const { return pool_; }
  const Target& target() const { return target_; }
  Reactor& reactor() const { return reactor_; }
  // Sends the request: on an idle pooled connection, a new one, or (at the pool's cap)
  // later, from the queue.
  void go();
  Connection* protocol_ = nullptr;
  std::shared_ptr<Connector> connector_;
#if defined(TORSION_WEB_TLS)
  std::shared_ptr<const TlsClientContext> tls_;  // for https
#endif

 private:
  void cancel();
  // Points the call at `target` and builds the request's bytes.
  void aim(Target target) {
    target_ = std::move(target);
    request_ = request_bytes(method_, target_, headers_, body_, pool_ == nullptr);
#if defined(TORSION_WEB_TLS)
    if (target_.tls && !tls_) tls_ = tls_context(pool_.get(), options_);
#endif
  }
  void redirect(const ClientResponse& response) {
    const std::string url = resolve_location(target_, *response.headers.get("location"));
    Target next = parse_url(url);
    ++redirects_;
    if (response.status == 301 || response.status == 302 || response.status == 303) {
      if (method_ != "HEAD") method_ = "GET";
      body_.clear();
      headers_.remove("content-type");
    }
    if (next.host != target_.host || next.port != target_.port || next.tls != target_.tls) {
      headers_.remove("authorization");
      headers_.remove("cookie");
      headers_.remove("host");
    }
    url_ = url;
    retried_ = false;
    aim(std::move(next));
    go();
  }

  Reactor& reactor_;
  std::shared_ptr<PoolState> pool_;  // null: one connection for this call alone
  std::string method_;
  std::string url_;
  Headers headers_;
  std::string body_;
  Target target_;
  std::string request_;
  bool retried_ = false;
  int redirects_ = 0;
  HttpClientOptions options_;
  Deferred<ClientResponse> result_;
  bool done_ = false;
};

// The factory of one new connection; it keeps itself alive (self_) until the attempt
// fails, then the connection keeps it, since the connector refers to it. In a pool it
// holds the connection's Slot.
class Dialer final : public ClientFactory, public std::enable_shared_from_this<Dialer> {
 public:
  explicit Dialer(std::shared_ptr<Call> call) : call_(std::move(call)) {
    if (call_->pool()) slot_.emplace(call_->pool(), call_->key());
  }
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
  std::optional<detail::Slot> slot_;
};

}  // namespace

namespace detail {

// One HTTP connection: it carries one call at a time and, in a pool, waits idle between
// calls. A streamed body is read only as fast as the user reads it.
class ClientConnection final : public Protocol, HttpParser::Sink {
 public:
  ClientConnection(Reactor& reactor, std::shared_ptr<PoolState> pool, std::string key, const HttpLimits& limits)
      : reactor_(reactor), pool_(std::move(pool)), key_(std::move(key)),
        parser_(HttpParser::Kind::response, *this, limits) {}
  ~ClientConnection() override {
    if (call_) call_->protocol_ = nullptr;
    if (auto stream = stream_.lock()) stream->conn = nullptr;
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
    head_ready_ = false;
    response_ = ClientResponse();
    parser_.reset();
    parser_.expect_head_response(call_->head());
    if (has_transport()) send_request();
  }

  // The pool closes this idle connection.
  void close_idle() {
    idle_timer_.cancel();
    transport().lose_connection();
  }

  // ClientResponse::read_some wants more of the streamed body: read on, from the loop.
  void body_wanted() {
    kick_ = reactor_.call_later(0, [this] { read_on(); });
  }
  // The user dropped a streamed response before its end: the connection cannot be reused.
  void abandon() {
    stream_.reset();
    if (call_) call_->protocol_ = nullptr;
    call_.reset();
    if (has_transport()) transport().abort_connection();
  }

  std::shared_ptr<void> owner_;  // the factory that made this connection

  void connection_made() override {
    if (call_) send_request();
  }
  void data_received(std::string_view data) override {
    if (!call_) {  // nothing asked: a server talking out of turn
      transport().abort_connection();
      return;
    }
    got_bytes_ = true;
    arm_wait();
    if (pending_.empty()) data.remove_prefix(consume(data));
    pending_.append(data);
    after_input();
  }
  bool eof_received() override {
    if (!call_) {  // the server closed an idle connection: it leaves the pool
      idle_timer_.cancel();
      pool_->forget(this);
      return false;
    }
    if (!pending_.empty()) {  // a streamed body still has bytes to hand over first
      eof_pending_ = true;
      return true;
    }
    end_of_input();
    return false;
  }
  void connection_lost(const Reason& reason) override {
    idle_timer_.cancel();
    wait_timer_.cancel();
    head_timer_.cancel();
    if (pool_) pool_->forget(this);
    if (call_) lost(reason);
  }

  // A streamed body is bounded by its reader's pace, not by limits.max_body.
  std::uint64_t body_limit(const HttpHead& head, std::uint64_t limit) override {
    return streams(head.status, head.headers) ? std::numeric_limits<std::uint64_t>::max() : limit;
  }

  void head_received(HttpHead& head) override {
    if (head.status / 100 != 1 || head.status == 101) head_timer_.cancel();  // the final head
    response_.status = head.status;
    response_.reason = std::move(head.reason);
    response_.version_minor = head.version_minor;
    response_.headers = std::move(head.headers);
    if (streams(head.status, response_.headers)) {
      auto stream = std::make_shared<ResponseStream>();
      stream->conn = this;
      stream->mark = call_->options().body_buffer;
      response_.stream_ = stream;
      stream_ = stream;
      head_ready_ = true;
      parser_.yield();  // the body goes in pieces that fit the reader's buffer
    }
  }
  void body_data(std::string_view data) override {
    if (auto stream = stream_.lock())
      stream->buffer.append(data);
    else
      response_.body.append(data);
  }
  void message_complete(const Headers&) override {
    if (response_.status / 100 == 1 && response_.status != 101) {  // interim: wait for the final one
      response_ = ClientResponse();
      parser_.expect_head_response(call_->head());
      return;
    }
    finished_ = true;
  }

 private:
  Scheduler& scheduler() const { return pool_ ? pool_->scheduler : reactor_; }

  // True if the response with this head streams its body (stream_body, a final answer
  // that is not a redirect to follow).
  bool streams(int status, const Headers& headers) const {
    const bool interim = status / 100 == 1 && status != 101;
    return !interim && call_->options().stream_body && !call_->follows(status, headers);
  }

  void send_request() {
    transport().write(call_->request());
    arm_wait();
    head_timer_.cancel();
    const double seconds = call_->options().headers_timeout;
    if (seconds > 0)
      head_timer_ = scheduler().call_later(seconds, [this, seconds] {
        fail(std::make_exception_ptr(TimeoutError("no response head within " + std::to_string(seconds) + " s")));
        transport().abort_connection();
      });
  }

  // The idle time-out: the longest wait for the next byte of the response.
  void arm_wait() {
    wait_timer_.cancel();
    const double seconds = call_ ? call_->options().idle_timeout : 0;
    if (seconds > 0 && !reading_paused_)
      wait_timer_ = scheduler().call_later(seconds, [this, seconds] {
        fail(std::make_exception_ptr(TimeoutError("no byte of the response for " + std::to_string(seconds) + " s")));
        transport().abort_connection();
      });
  }

  // True while a streamed body's reader has no room.
  bool stream_full() const {
    auto stream = stream_.lock();
    return stream && stream->full();
  }

  // Parses from `data` while the response wants bytes (a streamed body: as many as its
  // buffer has room for); returns how many were used.
  std::size_t consume(std::string_view data) {
    std::size_t used = 0;
    while (used < data.size() && call_ && !finished_) {
      std::string_view piece = data.substr(used);
      if (auto stream = stream_.lock()) {
        if (stream->full()) break;
        piece = piece.substr(0, stream->mark - stream->buffer.size());
      }
      used += parser_.feed(piece);
      if (parser_.failed()) {
        fail(std::make_exception_ptr(*parser_.error()));
        transport().abort_connection();
        break;
      }
    }
    return used;
  }

  // After input: hands the head and the body's bytes over, ends the response, and pauses
  // or resumes reading.
  void after_input() {
    if (head_ready_ && call_) {
      head_ready_ = false;
      std::shared_ptr<Call> call = call_;
      ClientResponse head = response_;
      response_.stream_.reset();  // the user's copies alone keep the stream: dropping them abandons it
      call->succeed(std::move(head));  // the head; the body follows through read_some
    }
    if (finished_ && call_) finish(pending_.empty() && !eof_pending_);
    if (auto stream = stream_.lock()) {
      deliver(*stream);
      if (!pending_.empty() && !stream->full()) body_wanted();  // the reader made room
    }
    update_reading();
  }

  // Reads what was kept while a streamed body's reader had no room.
  void read_on() {
    if (!call_) return;
    if (!pending_.empty()) pending_.erase(0, consume(pending_));
    if (eof_pending_ && pending_.empty() && call_) {
      eof_pending_ = false;
      end_of_input();
      transport().lose_connection();
      return;
    }
    after_input();
  }

  void update_reading() {
    if (!has_transport()) return;
    // Input kept for the reader is bounded too: about one buffer, plus one read.
    const bool hold = call_ && (stream_full() || (stream_.lock() && pending_.size() >= call_->options().body_buffer));
    if (hold && !reading_paused_) {
      reading_paused_ = true;
      wait_timer_.cancel();  // our reader, not the server, is slow
      transport().pause_producing();
    } else if (!hold && reading_paused_) {
      reading_paused_ = false;
      transport().resume_producing();
      arm_wait();
    }
  }

  // The server closed its side.
  void end_of_input() {
    parser_.feed_eof();  // completes a body delimited by the close
    if (finished_)
      finish(false);  // not reusable
    else
      lost(Reason(error::connection_lost, {}, "the server closed the connection before the response ended"));
  }

  // The call's response is complete; `clean` when no byte followed it and the close did
  // not delimit it. The connection goes back to the pool (or to the next queued call)
  // before the Deferred fires, so a request made from its callback can reuse it.
  void finish(bool clean) {
    auto call = std::move(call_);
    call->protocol_ = nullptr;
    wait_timer_.cancel();
    std::shared_ptr<ResponseStream> stream = stream_.lock();
    stream_.reset();
    if (stream) {
      stream->ended = true;
      stream->conn = nullptr;
    }
    const Headers& h = response_.headers;
    const bool keep = clean && pool_ && !pool_->closed && response_.status != 101 &&
                      (response_.version_minor == 1 ? !h.has_token("connection", "close")
                                                    : h.has_token("connection", "keep-alive"));
    if (reading_paused_) {
      reading_paused_ = false;
      transport().resume_producing();
    }
    ClientResponse response = std::move(response_);
    std::shared_ptr<Call> next = keep ? pool_->next_queued(key_) : nullptr;
    if (next) {
      assign(std::move(next), true);
    } else if (keep && pool_->idle[key_].size() < pool_->options.max_idle_per_host) {
      pool_->idle[key_].push_back(this);
      if (pool_->options.idle_timeout > 0)
        idle_timer_ = pool_->scheduler.call_later(pool_->options.idle_timeout, [this] {
          pool_->forget(this);
          transport().lose_connection();
        });
    } else {
      transport().lose_connection();
    }
    call->succeed(std::move(response));  // done already when the body was streamed
    if (stream) deliver(*stream);
  }
  // The response failed: the call's Deferred, or the streamed body's reader, hears why.
  void fail(std::exception_ptr error) {
    head_timer_.cancel();
    if (auto stream = stream_.lock()) {
      if (!stream->ended && !stream->error) stream->error = error;
      stream->conn = nullptr;
      stream_.reset();
      deliver(*stream);
    }
    if (auto call = std::move(call_)) {
      call->protocol_ = nullptr;
      call->fail(std::move(error));
    }
  }
  // The connection ended under the call.
  void lost(const Reason& reason) {
    if (reused_ && !got_bytes_ && call_->retry()) {
      call_->protocol_ = nullptr;
      call_.reset();
      return;
    }
    fail(std::make_exception_ptr(ConnectionError(reason)));
  }

  Reactor& reactor_;
  std::shared_ptr<PoolState> pool_;
  std::string key_;
  HttpParser parser_;
  std::shared_ptr<Call> call_;
  ClientResponse response_;
  std::weak_ptr<ResponseStream> stream_;  // the body being streamed, while its reader lives
  std::string pending_;                   // input the streamed body had no room for yet
  ScopedDelayedCall idle_timer_;  // never fires after the connection is gone
  ScopedDelayedCall wait_timer_;  // idle_timeout: the next byte of the response
  ScopedDelayedCall head_timer_;  // headers_timeout: the response's final head
  ScopedDelayedCall kick_;        // read_on from the loop
  bool reused_ = false;
  bool got_bytes_ = false;
  bool finished_ = false;
  bool head_ready_ = false;  // a streamed response's head waits to be handed over
  bool eof_pending_ = false;  // the server closed while pending_ still held bytes
  bool reading_paused_ = false;
};

ResponseStream::~ResponseStream() {
  if (conn && !ended) conn->abandon();
}

std::shared_ptr<Call> PoolState::next_queued(const std::string& key) {
  auto it = hosts.find(key);
  if (it == hosts.end()) return nullptr;
  while (!it->second.queue.empty()) {
    std::shared_ptr<Call> call = std::move(it->second.queue.front());
    it->second.queue.pop_front();
    if (!call->done()) return call;
  }
  return nullptr;
}

Slot::~Slot() {
  auto it = pool_->hosts.find(key_);
  if (it == pool_->hosts.end()) return;
  --it->second.open;
  if (it->second.queue.empty()) {
    if (it->second.open == 0) pool_->hosts.erase(it);
    return;
  }
  // A place freed: the next queued call goes out, from the loop.
  pool_->reactor.call_soon([pool = pool_, key = key_] {
    while (pool->can_open(key)) {
      std::shared_ptr<Call> call = pool->next_queued(key);
      if (!call) break;
      call->go();
    }
  });
}

}  // namespace detail

Deferred<std::string> ClientResponse::read_some() {
  if (!stream_) {
    if (body_given_) return succeed(std::string());
    body_given_ = true;
    return succeed(std::string(body));
  }
  detail::ResponseStream& st = *stream_;
  if (st.waiting) throw std::logic_error("ClientResponse::read_some: a read is already waiting");
  if (!st.buffer.empty()) {
    std::string piece = std::move(st.buffer);
    st.buffer.clear();
    if (st.conn) st.conn->body_wanted();
    return succeed(std::move(piece));
  }
  if (st.error) return fail<std::string>(st.error);
  if (st.ended) return succeed(std::string());
  if (!st.conn)
    return fail<std::string>(std::make_exception_ptr(
        ConnectionError(Reason(error::connection_lost, {}, "the connection is gone"))));
  Deferred<std::string> reader;
  st.waiting = reader;
  st.conn->body_wanted();
  return reader;
}

namespace {

std::unique_ptr<Protocol> Dialer::build_protocol(const Address&) {
  auto call = std::move(call_);
  if (!call || call->done()) return nullptr;  // cancelled while connecting
  auto connection =
      std::make_unique<Connection>(call->reactor(), call->pool(), call->key(), call->options().limits);
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
  go();
  return keep;
}

void Call::go() {
  if (done_) return;
  if (!pool_) return dial();
  const std::string k = key();
  if (Connection* idle = pool_->take(k)) return idle->assign(shared_from_this(), true);
  if (pool_->can_open(k)) return dial();
  pool_->hosts[k].queue.push_back(shared_from_this());
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

Deferred<ClientResponse> send(Reactor& reactor, std::shared_ptr<PoolState> pool, std::string method,
                              const std::string& url, Headers headers, std::string body,
                              const HttpClientOptions& options) {
  auto call = std::make_shared<Call>(reactor, std::move(pool), std::move(method), url, std::move(headers),
                                     std::move(body), options);
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
