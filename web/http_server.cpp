#include "web/http_server.hpp"

#include <charconv>
#include <ctime>
#include <stdexcept>
#include <system_error>

#include <limits>

#include "framework/detail/protocol_scope.hpp"
#include "framework/file_sender.hpp"
#include "framework/log.hpp"
#include "framework/reason.hpp"
#include "framework/stream.hpp"
#include "web/detail/conditional.hpp"
#include "web/detail/file_range.hpp"
#include "web/detail/http_date.hpp"
#include "web/http_parser.hpp"

namespace torsion::web {

namespace detail {

struct ServerConfig {
  Handler handler;
  HttpServerOptions options;
};

// One request and its response, shared by the connection and every Response handle.
struct Exchange {
  Request request;
  int status = 200;
  std::string reason;
  Headers headers;
  std::string body;
  std::unique_ptr<ByteSource> file;
  std::uint64_t file_size = 0;
  bool started = false;
  bool finished = false;
  HttpConnection* conn = nullptr;  // null for a value, and once the exchange is over
  // A streamed request body (HandlerOptions::stream_body): what the handler has not read.
  struct BodyStream {
    bool on = false;                 // the handler streams this request's body
    std::size_t mark = 0;            // HandlerOptions::body_buffer
    std::string buffer;              // arrived, not read yet
    bool ended = false;              // the body's last byte is in `buffer` (or was read)
    std::uint64_t whole_limit = 0;   // co_await request.body(): 413 above it
    std::optional<std::uint64_t> length;  // Content-Length, if the body has one
    std::exception_ptr error;        // why the body cannot end
    std::optional<Deferred<std::string>> waiting;  // a read_some waiting for bytes
    bool full() const noexcept { return buffer.size() >= mark; }
  } stream;
};

// The protocol behind every HTTP connection: parses one request at a time, runs the
// handler, writes the response, then goes on with whatever the client pipelined.
//
//   reading --head+body--> handling --response sent--> reading (keep-alive)
//      |  \--head--> streaming --/ |                \-> closing (Connection: close)
//      |          response sent before the body's end (or a check's refusal at the head):
//      |            draining (the rest of the body dropped, bounded) --end--> reading
//      \--bad input, 408-->  lingering (answered, half-closed, draining) --> closed
class HttpConnection final : public Protocol, HttpParser::Sink {
 public:
  HttpConnection(Scheduler& scheduler, std::shared_ptr<const ServerConfig> config,
                 const Address& peer)
      : scheduler_(scheduler),
        config_(std::move(config)),
        handler_(config_->handler),
        options_(config_->options),
        peer_(peer),
        parser_(HttpParser::Kind::request, *this, options_.limits) {}
  ~HttpConnection() override {
    drop_timers();
    forget_exchange();  // a Response kept by the user must not reach a destroyed connection
  }

  void connection_made() override { arm(options_.header_timeout, &HttpConnection::header_timed_out); }

  void data_received(std::string_view data) override {
    if (upgraded_ && upgraded_->has_transport()) return torsion::detail::data_to(*upgraded_, data);
    if (phase_ == Phase::lingering || phase_ == Phase::closing) return;
    if (parsing() && pending_.empty()) data.remove_prefix(parse(data));
    if (!data.empty() && phase_ != Phase::lingering && phase_ != Phase::closing) pending_.append(data);
    deliver_body();
    update_reading();
  }

  bool eof_received() override {
    if (upgraded_ && upgraded_->has_transport()) return torsion::detail::eof_to(*upgraded_);
    if (upgraded_) {  // the upgraded protocol hears it after the bytes before it
      peer_done_ = true;
      return true;
    }
    peer_done_ = true;
    if (phase_ == Phase::streaming && pending_.empty()) {
      body_cut();
      return true;
    }
    // A client may send its requests and then half-close: answer them first (in order),
    // then close.
    return phase_ == Phase::handling || phase_ == Phase::streaming ||
           ((phase_ == Phase::reading || phase_ == Phase::draining) && !pending_.empty());
  }

  void connection_lost(const Reason& reason) override {
    drop_timers();
    if (exchange_ && exchange_->stream.on && !exchange_->stream.ended && !exchange_->stream.error)
      exchange_->stream.error = std::make_exception_ptr(ConnectionError(reason));
    forget_exchange();
    if (upgraded_) {
      auto upgraded = std::move(upgraded_);
      upgraded->end_connection(reason);
    }
    phase_ = Phase::closed;
  }

  // --- Response's calls -----------------------------------------------------------

  void end(Exchange& x) {
    if (!x.started) {
      send_head(x, false);
      if (!body_allowed_) x.file.reset();
      if (body_allowed_ && !x.body.empty() && !x.file) transport().write(std::move(x.body));
      if (x.file) {
        sender_ = std::make_unique<FileSender>();
        sender_->set_zero_copy(options_.sendfile);
        sender_->set_region_size(1024 * 1024);  // no memory: fewer turns and sendfile calls
        // Exactly Content-Length bytes: a file that shrinks ends the connection (io_error,
        // or over sendfile the transport's EIO), one that grows is cut at the length.
        sender_->begin_transfer(
            transport(), std::move(x.file),
            [this](std::error_code ec) {
              if (ec) {
                transport().abort_connection();
              } else {
                exchange_done();
              }
            },
            x.file_size);
        return;
      }
    } else if (chunked_ && body_allowed_) {
      transport().write("0\r\n\r\n");
    }
    exchange_done();
  }

  void write(Exchange& x, std::string_view data) {
    if (!x.started) send_head(x, true);
    if (!body_allowed_ || data.empty()) return;
    if (!chunked_) return transport().write(data);
    char size[20];
    const auto r = std::to_chars(size, size + sizeof size - 2, data.size(), 16);
    std::size_t n = static_cast<std::size_t>(r.ptr - size);
    size[n++] = '\r';
    size[n++] = '\n';
    const std::string_view parts[] = {std::string_view(size, n), data, "\r\n"};
    transport().write_sequence(parts);
  }

  void register_producer(Producer& producer, bool streaming) {
    transport().register_producer(producer, streaming);
    producer_registered_ = true;
  }

  void switch_protocols(Exchange& x, std::unique_ptr<Protocol> protocol) {
    send_head(x, false);
    forget_exchange();
    drop_timers();
    phase_ = Phase::upgraded;
    upgraded_ = std::move(protocol);
    if (reading_paused_) {
      reading_paused_ = false;
      transport().resume_producing();
    }
    // Not from inside the handler: the new protocol starts from the loop, with whatever
    // the client sent after the request. Until then input waits in pending_, and past
    // read_ahead this layer pauses reading: that pause is lifted before the new protocol
    // runs, as the transport's pause is one flag and from now on only the new protocol
    // may hold it (lifting it later would undo a pause of its own; not lifting it left
    // the connection unread for good).
    upgrade_call_ = scheduler_.call_later(0, [this] {
      if (reading_paused_) {
        reading_paused_ = false;
        transport().resume_producing();
      }
      upgraded_->make_connection(transport());
      std::string rest = std::move(pending_);
      pending_.clear();
      if (!rest.empty() && upgraded_) torsion::detail::data_to(*upgraded_, rest);
      if (peer_done_ && upgraded_ && !torsion::detail::eof_to(*upgraded_))
        transport().lose_connection();
    });
  }

  // Request::read_some's calls: the handler wants more of a streamed body (the first
  // time, an Expect: 100-continue is answered).
  void body_wanted(Exchange& x) {
    if (continue_owed_ && !x.started) {
      continue_owed_ = false;
      transport().write("HTTP/1.1 100 Continue\r\n\r\n");
      arm_body_rate();
    }
    if (!pending_.empty() || reading_paused_) kick_ = scheduler_.call_later(0, [this] { parse_pending(); });
  }

  // co_await request.body() found the body larger than it may hold.
  void body_too_large() { refuse(413, "request body too large"); }

  // --- HttpParser::Sink -------------------------------------------------------------

  std::uint64_t body_limit(const HttpHead& head, std::uint64_t limit) override {
    route_options_ = handler_.options_for(head.method, head.target);
    options_resolved_ = true;
    if (!route_options_ || !route_options_->max_body) return limit;
    return *route_options_->max_body == 0 ? std::numeric_limits<std::uint64_t>::max()
                                          : *route_options_->max_body;
  }

  void head_received(HttpHead& head) override {
    timer_.cancel();
    auto x = std::make_shared<Exchange>();
    x->conn = this;
    Request& r = x->request;
    r.method_ = std::move(head.method);
    r.target_ = std::move(head.target);
    r.version_minor_ = head.version_minor;
    r.headers_ = std::move(head.headers);
    r.peer_ = peer_;
    r.body_.exchange_ = x;
    exchange_ = x;
    version_minor_ = head.version_minor;
    head_request_ = r.method_ == "HEAD";
    ++served_;
    keep_alive_ = head.keep_alive && (options_.max_requests == 0 || served_ < options_.max_requests);
    const HandlerOptions* ho = options_resolved_ ? route_options_ : handler_.options_for(r.method_, r.target_);
    options_resolved_ = false;
    body_pending_ = head.body != BodyKind::none;
    body_chunked_ = head.body == BodyKind::chunked;
    body_length_ = head.content_length;
    body_total_ = 0;
    continue_owed_ = body_pending_ && head.expect_continue;
    if (ho && ho->check && !passes_check(*ho, r)) return parser_.yield();
    if (head.body == BodyKind::none) return;
    body_received_ = 0;
    if (ho && ho->stream_body) {  // the handler runs now and reads the body itself
      x->stream.on = true;
      x->stream.mark = ho->body_buffer;
      x->stream.whole_limit = ho->max_body && *ho->max_body != 0 ? *ho->max_body : options_.limits.max_body;
      if (!body_chunked_) x->stream.length = body_length_;
      if (!head.expect_continue) arm_body_rate();
      phase_ = Phase::streaming;
      parser_.yield();  // the body goes in pieces that fit the handler's buffer
      dispatch(false);
      return;
    }
    if (continue_owed_) {
      continue_owed_ = false;
      transport().write("HTTP/1.1 100 Continue\r\n\r\n");
    }
    if (head.body == BodyKind::length) r.body_.reserve(static_cast<std::size_t>(head.content_length));
    arm_body_rate();
  }

  void body_data(std::string_view data) override {
    body_total_ += data.size();
    if (!exchange_) return;  // answered already: drained (dropped)
    body_received_ += data.size();
    if (exchange_->stream.on)
      exchange_->stream.buffer.append(data);
    else
      exchange_->request.body_.append(data);
  }

  void message_complete(const Headers& trailers) override {
    body_pending_ = false;
    if (!exchange_) {  // answered already: the body was drained
      if (phase_ == Phase::draining) next_request();
      return;
    }
    timer_.cancel();
    exchange_->request.trailers_ = trailers;
    const bool streamed = phase_ == Phase::streaming;
    phase_ = Phase::handling;
    if (!streamed) return dispatch(true);
    exchange_->stream.ended = true;  // read_some gives the end once the buffer is read
    if (!exchange_->started) arm_handler_timeout();
  }

 private:
  enum class Phase { reading, streaming, handling, draining, closing, lingering, upgraded, closed };
  using TimerFn = void (HttpConnection::*)();

  // Parses requests from `data` while reading; returns the bytes used. A handler that
  // answers at once lets the loop go on to the next pipelined request.
  // True while input goes to the parser: between requests and in a request's head, or
  // in a streamed body that the handler's buffer still has room for.
  bool parsing() const {
    return phase_ == Phase::reading || phase_ == Phase::draining ||
           (phase_ == Phase::streaming && !exchange_->stream.full());
  }

  std::size_t parse(std::string_view data) {
    in_parse_ = true;
    std::size_t used = 0;
    while (parsing() && used < data.size()) {
      const bool was_idle = !parser_.in_message();
      // A streamed body goes up to the handler's mark; the rest waits in pending_.
      std::string_view piece = data.substr(used);
      if (phase_ == Phase::streaming)
        piece = piece.substr(0, exchange_->stream.mark - exchange_->stream.buffer.size());
      used += parser_.feed(piece);
      if (parser_.failed()) {
        if (phase_ == Phase::draining)  // the answer went out already: no second one
          linger();
        else
          refuse(parser_.error()->status(), parser_.error()->what());
        break;
      }
      if (phase_ == Phase::draining && body_total_ - drain_from_ > options_.limits.max_body) {
        linger();  // more than a body's worth to drop: stop reading it and close
        break;
      }
      if (was_idle && parser_.in_message() && phase_ == Phase::reading && between_requests_) {
        between_requests_ = false;
        arm(options_.header_timeout, &HttpConnection::header_timed_out);
      }
    }
    in_parse_ = false;
    return used;
  }

  // Parses what was kept while a request was answered; closes if the client has
  // half-closed and nothing complete is left.
  void parse_pending() {
    const std::size_t used = parse(pending_);
    pending_.erase(0, used);
    deliver_body();
    update_reading();
    if (peer_done_ && phase_ == Phase::reading) {
      phase_ = Phase::closing;
      transport().lose_connection();
    } else if (peer_done_ && phase_ == Phase::streaming && pending_.empty()) {
      body_cut();
    } else if (peer_done_ && phase_ == Phase::draining && pending_.empty()) {
      phase_ = Phase::closing;  // the body was cut short: nothing can follow it
      transport().lose_connection();
    }
  }

  // Stops reading from the client while input waits (read_ahead) or while a streamed
  // body fills the handler's buffer; reads again once there is room.
  void update_reading() {
    if (phase_ == Phase::lingering || phase_ == Phase::closing || phase_ == Phase::closed) return;
    const bool hold = pending_.size() > options_.read_ahead || (phase_ == Phase::streaming && exchange_->stream.full());
    if (hold && !reading_paused_) {
      reading_paused_ = true;
      stalled_ = true;
      transport().pause_producing();
    } else if (!hold && reading_paused_ &&
               (phase_ == Phase::reading || phase_ == Phase::streaming || phase_ == Phase::draining)) {
      reading_paused_ = false;
      transport().resume_producing();
    }
  }

  // Hands what a streamed body has to a waiting read_some.
  void deliver_body() {
    if (!exchange_ || !exchange_->stream.waiting) return;
    Exchange::BodyStream& st = exchange_->stream;
    if (st.buffer.empty() && !st.ended && !st.error) return;
    Deferred<std::string> reader = std::move(*st.waiting);
    st.waiting.reset();
    if (!st.buffer.empty()) {
      std::string piece = std::move(st.buffer);
      st.buffer.clear();
      if (!pending_.empty()) kick_ = scheduler_.call_later(0, [this] { parse_pending(); });
      reader.callback(std::move(piece));
    } else if (st.error) {
      reader.errback(st.error);
    } else {
      reader.callback(std::string());
    }
  }

  // The client half-closed inside a streamed body.
  void body_cut() {
    parser_.feed_eof();
    if (parser_.failed()) refuse(parser_.error()->status(), parser_.error()->what());
  }

  // Runs HandlerOptions::check on a head; false if it answered (then the connection
  // closes after the answer, the body unread).
  bool passes_check(const HandlerOptions& ho, const Request& r) {
    std::optional<Response> answer;
    try {
      answer = ho.check(r);
    } catch (...) {
      log(LogLevel::error, "HTTP check for " + r.method() + " " + r.target() +
                               " threw: " + describe_error(std::current_exception()));
      answer.emplace(500, "internal server error\n");
    }
    if (!answer) return true;
    answer->x_->file.reset();
    Response(exchange_).end(*answer);  // then the body is drained, or the connection closes
    return false;
  }

  void forget_exchange() {
    if (!exchange_) return;
    std::shared_ptr<Exchange> x = std::move(exchange_);
    exchange_.reset();
    x->conn = nullptr;
    x->finished = true;
    Exchange::BodyStream& st = x->stream;
    if (st.on && !st.ended && !st.error)
      st.error = std::make_exception_ptr(ConnectionError(
          Reason(error::connection_done, {}, "the response ended before the request's body was read")));
    if (st.waiting) {
      Deferred<std::string> reader = std::move(*st.waiting);
      st.waiting.reset();
      if (st.error)
        reader.errback(st.error);
      else
        reader.callback(std::string());
    }
  }

  void arm_body_rate() {
    if (options_.min_body_rate > 0 && options_.body_rate_window > 0)
      arm(options_.body_rate_window, &HttpConnection::check_body_rate);
  }
  void arm_handler_timeout() {
    if (options_.handler_timeout > 0) arm(options_.handler_timeout, &HttpConnection::handler_timed_out);
  }

  // Runs the handler; `timed`: its time-out starts now (a handler streaming the body gets
  // it once the body has ended).
  void dispatch(bool timed) {
    if (timed) arm_handler_timeout();
    std::shared_ptr<Exchange> x = exchange_;
    Response response(x);
    try {
      handler_(x->request, response);
    } catch (...) {
      log(LogLevel::error, "HTTP handler for " + x->request.method() + " " + x->request.target() +
                               " threw: " + describe_error(std::current_exception()));
      if (x->conn && !x->started) {
        Response failure(500, "internal server error\n");
        response.end(failure);
      } else if (x->conn) {
        transport().abort_connection();
      }
    }
  }

  // The head, with the server's fields. `streaming`: the body follows in pieces.
  void send_head(Exchange& x, bool streaming) {
    x.started = true;
    if (phase_ == Phase::handling) timer_.cancel();  // the handler answered in time
    if (body_pending_ && !can_drain()) keep_alive_ = false;  // the body's rest is not read
    // 101, or a 2xx to CONNECT: the connection becomes another protocol (or a tunnel) after
    // the head, which has no framing fields and no Connection field of the server's.
    const bool switching = x.status == 101 || (x.request.method() == "CONNECT" && x.status / 100 == 2);
    if (switching && x.status != 101) keep_alive_ = false;  // a tunnel never carries HTTP again
    const bool no_body = x.status / 100 == 1 || x.status == 204 || x.status == 304 || switching;
    body_allowed_ = !no_body && !head_request_;
    if (peer_done_ && pending_.empty()) keep_alive_ = false;
    if (x.headers.has_token("connection", "close")) keep_alive_ = false;
    x.headers.remove("transfer-encoding");
    chunked_ = false;
    std::string& h = head_buffer_;
    h.clear();
    h += "HTTP/1.1 ";
    char digits[8];
    const auto r = std::to_chars(digits, digits + sizeof digits, x.status);
    h.append(digits, r.ptr);
    h += ' ';
    h += x.reason.empty() ? reason_phrase(x.status) : std::string_view(x.reason);
    h += "\r\n";
    if (!options_.server_name.empty() && !x.headers.has("server"))
      h.append("Server: ").append(options_.server_name).append("\r\n");
    if (!x.headers.has("date"))
      h.append("Date: ")
          .append(http_date(options_.wall_clock ? options_.wall_clock() : std::time(nullptr)))
          .append("\r\n");
    if (!switching) x.headers.remove("connection");
    if (!no_body) {
      if (!streaming) {
        x.headers.remove("content-length");
        const std::uint64_t size = x.file ? x.file_size : x.body.size();
        char big[24];
        const auto len = std::to_chars(big, big + sizeof big, size);
        h.append("Content-Length: ").append(big, len.ptr).append("\r\n");
      } else if (!x.headers.has("content-length")) {
        if (version_minor_ == 1)
          chunked_ = true;
        else
          keep_alive_ = false;  // HTTP/1.0: the body ends with the connection
      }
    }
    for (const auto& [name, value] : x.headers.fields())
      h.append(name).append(": ").append(value).append("\r\n");
    if (chunked_) h += "Transfer-Encoding: chunked\r\n";
    if (!switching) {
      if (!keep_alive_)
        h += "Connection: close\r\n";
      else if (version_minor_ == 0)
        h += "Connection: keep-alive\r\n";
    }
    h += "\r\n";
    transport().write(std::string_view(h));
  }

  // The response has been handed to the transport: close, or go on with the next request.
  void exchange_done() {
    timer_.cancel();
    if (producer_registered_) {
      producer_registered_ = false;
      transport().unregister_producer();
    }
    forget_exchange();
    if (body_pending_) return keep_alive_ ? drain() : linger();
    if (!keep_alive_) {
      phase_ = Phase::closing;
      transport().lose_connection();
      return;
    }
    next_request();
  }

  // Waits for the next request on a kept-alive connection.
  void next_request() {
    phase_ = Phase::reading;
    between_requests_ = true;
    arm(options_.idle_timeout, &HttpConnection::idle_timed_out);
    parse_on();
  }

  // Parses on from the loop what the phase now lets through: inside parse() (a handler
  // that answered at once) the loop goes on by itself; with nothing kept, no pause and no
  // EOF, parse_pending would have nothing to do.
  void parse_on() {
    if (!in_parse_ && (!pending_.empty() || reading_paused_ || peer_done_))
      kick_ = scheduler_.call_later(0, [this] { parse_pending(); });
  }

  // Whether the rest of a request's body may be dropped to keep the connection once an
  // answer went out before its end (as nginx discards a body, and h11 reuses a
  // connection once both messages are done): not when the client still waits for 100
  // Continue (it may never send the body, and its next request would be read as body),
  // nor when more than HttpLimits::max_body is left to read.
  bool can_drain() const {
    if (continue_owed_) return false;
    if (body_chunked_) return true;  // counted as it comes (parse)
    return body_length_ - body_total_ <= options_.limits.max_body;
  }

  // The answer went out before the request's body ended: reads the rest and drops it,
  // for at most linger_timeout, then goes on with the next request.
  void drain() {
    phase_ = Phase::draining;
    drain_from_ = body_total_;
    arm(options_.linger_timeout, &HttpConnection::linger);
    parse_on();
  }

  // Answers an error, half-closes, and drains the client for a while (lingering close),
  // so that it reads the answer instead of a reset.
  // A handler that streams the body and has already sent its head gets the error from
  // read_some, and the connection is aborted (the response cannot be finished).
  void refuse(int status, std::string_view message) {
    if (exchange_ && exchange_->stream.on && !exchange_->stream.ended && !exchange_->stream.error)
      exchange_->stream.error = std::make_exception_ptr(HttpError(status, std::string(message)));
    if (exchange_ && exchange_->started) {
      forget_exchange();
      phase_ = Phase::closing;
      transport().abort_connection();
      return;
    }
    Exchange x;
    x.status = status;
    x.body.assign(message).append("\n");
    x.headers.add("Content-Type", "text/plain; charset=utf-8");
    head_request_ = false;
    answer_and_linger(x);
  }

  // Sends `x` as the last response of the connection, then closes it lingering.
  void answer_and_linger(Exchange& x) {
    forget_exchange();
    keep_alive_ = false;
    if (version_minor_ < 0) version_minor_ = 1;
    send_head(x, false);
    if (body_allowed_) transport().write(std::move(x.body));
    linger();
  }

  // Half-closes and drains the client for a while (lingering close).
  void linger() {
    phase_ = Phase::lingering;
    pending_.clear();
    if (reading_paused_) {
      reading_paused_ = false;
      transport().resume_producing();
    }
    transport().lose_write_connection();
    arm(options_.linger_timeout, &HttpConnection::linger_over);
  }

  void arm(double seconds, TimerFn fn) {
    timer_.cancel();
    if (seconds > 0) timer_ = scheduler_.call_later(seconds, [this, fn] { (this->*fn)(); });
  }
  void drop_timers() {
    timer_.cancel();
    kick_.cancel();
    upgrade_call_.cancel();
  }

  void header_timed_out() {
    if (parser_.in_message())
      refuse(408, "request header timeout");
    else
      transport().lose_connection();  // nothing was asked: just close
  }
  void idle_timed_out() {
    phase_ = Phase::closing;
    transport().lose_connection();
  }
  void check_body_rate() {
    if (reading_paused_ || stalled_) {  // our back-pressure, not the client, held the body
      stalled_ = reading_paused_;
      body_received_ = 0;
      return arm(options_.body_rate_window, &HttpConnection::check_body_rate);
    }
    const double needed = options_.min_body_rate * options_.body_rate_window;
    if (static_cast<double>(body_received_) < needed) return refuse(408, "request body too slow");
    body_received_ = 0;
    arm(options_.body_rate_window, &HttpConnection::check_body_rate);
  }
  void handler_timed_out() {  // only armed until the head is sent
    if (exchange_ && !exchange_->started) {
      keep_alive_ = false;
      std::shared_ptr<Exchange> x = exchange_;
      x->status = 503;
      x->reason.clear();
      x->headers.clear();
      x->body = "the handler did not answer in time\n";
      x->file.reset();
      x->finished = true;
      end(*x);
    }
  }
  void linger_over() { transport().lose_connection(); }

  Scheduler& scheduler_;
  std::shared_ptr<const ServerConfig> config_;  // shared with the factory
  const Handler& handler_;
  const HttpServerOptions& options_;
  Address peer_;
  HttpParser parser_;
  Phase phase_ = Phase::reading;
  std::string pending_;  // input not parsed yet, bounded by read_ahead (plus one read)
  std::shared_ptr<Exchange> exchange_;
  std::string head_buffer_;
  DelayedCall timer_;  // the deadline of the current phase
  DelayedCall kick_;   // resumes parsing from the loop
  DelayedCall upgrade_call_;  // starts an upgraded protocol from the loop
  std::unique_ptr<FileSender> sender_;
  std::unique_ptr<Protocol> upgraded_;
  std::uint64_t body_received_ = 0;
  std::size_t served_ = 0;
  int version_minor_ = 1;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool body_allowed_ = true;  // the current response may have a body (not HEAD, 1xx, 204, 304)
  bool in_parse_ = false;
  bool chunked_ = false;
  bool reading_paused_ = false;
  bool between_requests_ = false;
  bool peer_done_ = false;
  bool producer_registered_ = false;
  bool stalled_ = false;           // reading was paused during the body-rate window
  bool body_pending_ = false;      // the current request's body has not ended yet
  bool body_chunked_ = false;      // ... and it is chunked
  bool continue_owed_ = false;     // Expect: 100-continue, not answered yet
  std::uint64_t body_length_ = 0;  // the current request's Content-Length
  std::uint64_t body_total_ = 0;   // body bytes of the current request parsed so far
  std::uint64_t drain_from_ = 0;   // body_total_ when draining began
  bool options_resolved_ = false;  // body_limit found route_options_ for the current head
  const HandlerOptions* route_options_ = nullptr;
};

}  // namespace detail

using detail::Exchange;

// --- Request ----------------------------------------------------------------------

std::string_view Request::path() const noexcept {
  const std::string_view t = target_;
  return t.substr(0, t.find('?'));
}

std::string_view Request::query() const noexcept {
  const std::string_view t = target_;
  const std::size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

Deferred<std::string> Request::read_some() {
  const std::shared_ptr<Exchange> x = body_.exchange_.lock();
  if (!x || !x->stream.on) {  // the whole body is here
    if (body_given_) return succeed(std::string());
    body_given_ = true;
    return succeed(std::string(body_));
  }
  Exchange::BodyStream& st = x->stream;
  if (st.waiting) throw std::logic_error("Request::read_some: a read is already waiting");
  if (!st.buffer.empty()) {
    std::string piece = std::move(st.buffer);
    st.buffer.clear();
    if (x->conn) x->conn->body_wanted(*x);
    return succeed(std::move(piece));
  }
  if (st.error) return fail<std::string>(st.error);
  if (st.ended) return succeed(std::string());
  if (!x->conn)
    return fail<std::string>(std::make_exception_ptr(
        ConnectionError(Reason(error::connection_lost, {}, "the connection is gone"))));
  Deferred<std::string> reader;
  st.waiting = reader;
  x->conn->body_wanted(*x);
  return reader;
}

namespace {

// co_await request.body() past its limit: 413 to the client, HttpError to the handler.
std::exception_ptr refuse_too_large(Exchange& x) {
  if (x.conn) x.conn->body_too_large();  // answered, then a lingering close
  return std::make_exception_ptr(HttpError(413, "request body too large"));
}

}  // namespace

// Reads the rest of a streamed body into the request's body string, as rest() promises,
// then fires `done`. Callbacks rather than a coroutine: clang 14 cannot build a coroutine
// here under the fuzz build's flags ("cannot represent a difference across sections").
// read_some gives all that waits at once, so the recursion below is a few calls deep.
void RequestBody::read_rest(std::shared_ptr<Exchange> x, Deferred<void> done) {
  Deferred<std::string> next = [&] {
    try {
      return x->request.read_some();
    } catch (...) {  // a read already waits
      return fail<std::string>(std::current_exception());
    }
  }();
  next.add_callbacks(
      [x, done](std::string piece) mutable {
        if (piece.empty()) return done.callback();
        RequestBody& body = x->request.body_;
        if (body.size() + piece.size() > x->stream.whole_limit) return done.errback(refuse_too_large(*x));
        body += piece;
        read_rest(std::move(x), std::move(done));
      },
      [done](std::exception_ptr error) mutable { done.errback(std::move(error)); });
}

Deferred<void> RequestBody::rest() const {
  std::shared_ptr<Exchange> x = exchange_.lock();
  if (!x || !x->stream.on) return succeed();
  const Exchange::BodyStream& st = x->stream;
  if (st.length && *st.length > st.whole_limit)  // before 100 Continue and any byte read
    return fail<void>(refuse_too_large(*x));
  Deferred<void> done;
  read_rest(std::move(x), done);
  return done;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [n, v] : params_)
    if (n == name) return v;
  return {};
}

// --- Response ---------------------------------------------------------------------

Response::Response(int status) : x_(std::make_shared<Exchange>()) { set_status(status); }

Response::Response(int status, std::string body, std::string content_type) : Response(status) {
  x_->body = std::move(body);
  x_->headers.set("Content-Type", std::move(content_type));
}

int Response::status() const noexcept { return x_->status; }

Response& Response::set_status(int status, std::string reason) {
  if (status < 100 || status > 999)
    throw std::invalid_argument("Response::set_status: status " + std::to_string(status) +
                                " is outside 100..999");
  x_->status = status;
  x_->reason = std::move(reason);
  return *this;
}

Response& Response::set_header(std::string_view name, std::string value) {
  x_->headers.set(name, std::move(value));
  return *this;
}

Response& Response::add_header(std::string name, std::string value) {
  x_->headers.add(std::move(name), std::move(value));
  return *this;
}

Headers& Response::headers() noexcept { return x_->headers; }

Response& Response::set_body(std::string body) {
  x_->body = std::move(body);
  x_->file.reset();
  return *this;
}

const std::string& Response::body() const noexcept { return x_->body; }

Response& Response::set_file(const std::string& path) {
  std::error_code ec;
  auto source = open_regular_file(path, ec);  // no stat before: a FIFO cannot block it
  if (!source) throw std::system_error(ec, path);
  const std::uint64_t size = *source->size_at_open();
  return set_file(std::move(source), size);
}

Response& Response::set_file(std::unique_ptr<ByteSource> source, std::uint64_t size) {
  if (!source) throw std::invalid_argument("Response::set_file: null source");
  x_->file = std::move(source);
  x_->file_size = size;
  x_->body.clear();
  return *this;
}

void Response::end() {
  if (x_->finished || !x_->conn) return;
  x_->finished = true;
  if (!x_->started) {
    // A file response may become a 304 (web/conditional.cpp), a 206 or a 416
    // (web/byte_range.cpp).
    detail::answer_conditional(x_->request, x_->status, x_->headers, x_->body, x_->file,
                               x_->file_size);
    detail::answer_range(x_->request, x_->status, x_->headers, x_->body, x_->file,
                         x_->file_size);
  }
  x_->conn->end(*x_);
}

void Response::end(std::string body) {
  if (x_->finished || !x_->conn) return;
  if (x_->started) {
    write(body);  // a streamed body: the last piece, then the end
  } else {
    set_body(std::move(body));
  }
  end();
}

void Response::end(const Response& other) {
  if (x_->finished || !x_->conn || other.x_ == x_) return end();
  x_->status = other.x_->status;
  x_->reason = other.x_->reason;
  x_->headers = other.x_->headers;
  x_->body = other.x_->body;
  x_->file = std::move(other.x_->file);  // a file source is sent once
  x_->file_size = other.x_->file_size;
  end();
}

void Response::write(std::string_view data) {
  if (x_->finished || !x_->conn) return;
  x_->conn->write(*x_, data);
}

void Response::register_producer(Producer& producer, bool streaming) {
  if (x_->finished || !x_->conn) return;
  x_->conn->register_producer(producer, streaming);
}

void Response::switch_protocols(std::unique_ptr<Protocol> protocol) {
  if (x_->status != 101 && !(x_->request.method() == "CONNECT" && x_->status / 100 == 2))
    throw std::logic_error("Response::switch_protocols: the status must be 101 (or 2xx to CONNECT), not " +
                           std::to_string(x_->status));
  if (x_->finished || !x_->conn || x_->started) return;
  x_->conn->switch_protocols(*x_, std::move(protocol));
}

bool Response::started() const noexcept { return x_->started; }
bool Response::finished() const noexcept { return x_->finished; }
bool Response::connected() const noexcept { return x_->conn != nullptr; }
Request& Response::request() const noexcept { return x_->request; }

// --- Handler ----------------------------------------------------------------------

Handler::Handler()
    : fn_([](Request&, Response& response) { response.end(Response(404, "not found\n")); }) {}

const HandlerOptions* Handler::options_for(std::string_view method, std::string_view target) const {
  return resolve_ ? resolve_(method, target) : options_.get();
}

void Handler::set_options(HandlerOptions options) {
  if (options.body_buffer == 0) throw std::invalid_argument("HandlerOptions: body_buffer must be at least 1");
  if (options.max_body == std::uint64_t{0} && !options.stream_body)
    throw std::invalid_argument("HandlerOptions: max_body 0 (no limit) needs stream_body");
  options_ = std::make_shared<const HandlerOptions>(std::move(options));
}

void Handler::answer_later(Deferred<Response> reply, Response response) {
  reply.add_callbacks([response](Response value) mutable { response.end(value); },
                      [response](std::exception_ptr error) mutable {
                        const Request& r = response.request();
                        log(LogLevel::error, "HTTP handler for " + r.method() + " " + r.target() +
                                                 " failed: " + describe_error(error));
                        if (!response.started())
                          response.end(Response(500, "internal server error\n"));
                      });
}

// --- HttpFactory ------------------------------------------------------------------

HttpFactory::HttpFactory(Scheduler& scheduler, Handler handler, HttpServerOptions options)
    : scheduler_(scheduler),
      config_(std::make_shared<detail::ServerConfig>(
          detail::ServerConfig{std::move(handler), std::move(options)})) {}

const HttpServerOptions& HttpFactory::options() const noexcept { return config_->options; }

HttpFactory::~HttpFactory() = default;

std::unique_ptr<Protocol> HttpFactory::build_protocol(const Address& peer) {
  return std::make_unique<detail::HttpConnection>(scheduler_, config_, peer);
}

namespace {
struct DateCache {
  std::time_t second = -1;
  char text[40];
  std::size_t length = 0;
  std::uint64_t formats = 0;
};
thread_local DateCache date_cache;
}  // namespace

std::string_view http_date() { return http_date(std::time(nullptr)); }

std::string_view http_date(std::time_t now) {
  DateCache& c = date_cache;
  if (now != c.second) {
    c.length = detail::format_http_date(now, c.text);
    c.second = now;
    ++c.formats;
  }
  return std::string_view(c.text, c.length);
}

namespace detail {
std::uint64_t http_date_formats() noexcept { return date_cache.formats; }
}  // namespace detail

}  // namespace torsion::web
