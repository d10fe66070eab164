#pragma once
/// \file
/// The HTTP/1.1 server: Request, Response, Handler (callback, Deferred or coroutine
/// style), HttpServerOptions and HttpFactory, the Factory to listen with.
///
///     Router router;
///     router.get("/hello", [](Request&, Response& res) { res.end("hello world\n"); });
///     HttpFactory site(reactor, router);
///     listen_tcp(reactor, 8080, site);

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/address.hpp"
#include "framework/deferred.hpp"
#include "framework/delayed_call.hpp"
#include "framework/protocol.hpp"
#include "framework/task.hpp"
#include "web/http_message.hpp"

namespace torsion {
class ByteSource;
}  // namespace torsion

namespace torsion::web {

namespace detail {
struct Exchange;
struct ServerConfig;
class HttpConnection;
}  // namespace detail

/// A request's body: a std::string holding what the server has put in it, and, with
/// `co_await request.body()` in a coroutine handler, the whole body (see Request::body()).
class RequestBody : public std::string {
 public:
  RequestBody() = default;
  using std::string::operator=;

  /// What `co_await` on a body gives: the whole body, once it is all in.
  class Awaiter;
  /// Awaits the whole body; see Request::body().
  Awaiter operator co_await() const;

 private:
  friend class Request;
  friend class detail::HttpConnection;
  // Fires once the rest of a streamed body is in this string (at once otherwise).
  Deferred<void> rest() const;
  static void read_rest(std::shared_ptr<detail::Exchange> x, Deferred<void> done);
  std::weak_ptr<detail::Exchange> exchange_;  // empty for a Request built by hand
};

class RequestBody::Awaiter {
 public:
  bool await_ready() const noexcept { return inner_.await_ready(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    return inner_.await_suspend(h);
  }
  /// The whole body (the Request's own string), or the read's error rethrown.
  const std::string& await_resume() {
    inner_.await_resume();
    return body_;
  }

 private:
  friend class RequestBody;
  Awaiter(Deferred<void> rest, const RequestBody& body)
      : inner_(std::move(rest).operator co_await()), body_(body) {}
  decltype(std::declval<Deferred<void>>().operator co_await()) inner_;
  const RequestBody& body_;
};

inline RequestBody::Awaiter RequestBody::operator co_await() const { return Awaiter(rest(), *this); }

/// One request as the server received it: its head, and its body either whole (body())
/// or, for a handler with HandlerOptions::stream_body, piece by piece (read_some()) or
/// all at once (`co_await request.body()`).
/// Handlers get it by reference; it stays valid as long as any Response handle of the
/// same exchange lives (a coroutine handler may keep using it across co_await).
class Request {
 public:
  /// The method, as sent ("GET").
  const std::string& method() const noexcept { return method_; }
  /// The request-target, as sent ("/a/b?x=1").
  const std::string& target() const noexcept { return target_; }
  /// The target's path (before any '?'), not percent-decoded.
  std::string_view path() const noexcept;
  /// The target's query (after the first '?'), or empty.
  std::string_view query() const noexcept;
  /// 0 for HTTP/1.0, 1 for HTTP/1.1.
  int version_minor() const noexcept { return version_minor_; }
  /// The header fields.
  const Headers& headers() const noexcept { return headers_; }
  /// The first field called `name`, or nullopt.
  std::optional<std::string_view> header(std::string_view name) const { return headers_.get(name); }
  /// The trailer fields of a chunked body (empty otherwise).
  const Headers& trailers() const noexcept { return trailers_; }
  /// The body, complete (bounded by HttpLimits::max_body), for a handler that does not
  /// stream it. A coroutine handler that streams it (HandlerOptions::stream_body) gets
  /// it whole with `co_await request.body()`: the rest of the body (what read_some() has
  /// not given) is read into body() (with Expect: 100-continue answered), bounded by the
  /// handler's max_body or, where that is 0 (none), by HttpLimits::max_body: a larger
  /// body is answered 413 (before any byte is read when Content-Length says so) and the
  /// co_await throws HttpError. It throws what read_some() throws otherwise. In any other
  /// handler the co_await gives the body at once.
  const RequestBody& body() const noexcept { return body_; }
  /// The next piece of the body: fires with the bytes that arrived since the last read
  /// (waiting for some if there are none), and with an empty string once the body has
  /// ended. A handler that streams the body (HandlerOptions::stream_body) gets it this
  /// way, with back-pressure: the server stops reading from the client while
  /// HandlerOptions::body_buffer bytes wait for a read, and answers an Expect:
  /// 100-continue at the first read. Other handlers get the whole body (a copy of
  /// body()) from the first read. Fails with HttpError (413, 400, 408) if the body breaks
  /// a limit or the client stalls, and with ConnectionError if the connection is lost or
  /// the response ended before the body was read. One read at a time (a second one
  /// while the first waits throws std::logic_error). A response sent before the body's
  /// end makes the server drop the rest of the body and keep the connection (bounded by
  /// HttpLimits::max_body and linger_timeout; closed instead if the client still waits
  /// for 100 Continue or more than max_body is left).
  Deferred<std::string> read_some();
  /// A path parameter bound by the Router (":name" or "*name"), or empty.
  std::string_view param(std::string_view name) const;
  /// The client's address.
  const Address& peer() const noexcept { return peer_; }

 private:
  friend class detail::HttpConnection;
  friend class Router;
  friend class RequestBody;
  std::string method_;
  std::string target_;
  int version_minor_ = 1;
  Headers headers_;
  Headers trailers_;
  RequestBody body_;  // and the exchange, for read_some
  std::vector<std::pair<std::string, std::string>> params_;
  Address peer_;
  bool body_given_ = false;  // read_some gave the whole body
};

/// A response: a status, header fields and a body. Two uses:
///  - built as a value (`Response(200, "hi\n")`) and returned by a Deferred or coroutine
///    handler, which the server then sends;
///  - handed to a callback handler bound to its exchange: end() sends it, or write()
///    streams the body (chunked for HTTP/1.1 unless a Content-Length was set).
/// Copies are handles on the same response, so a callback handler may keep one and end
/// it later (from a timer, a Deferred...). Once the connection is gone, sending calls do
/// nothing and connected() is false: no handle can touch freed memory.
/// The server adds Date, Server, Content-Length or Transfer-Encoding, and Connection.
class Response {
 public:
  /// A response with `status`, no header and an empty body.
  explicit Response(int status = 200);
  /// A response with `status` and `body`, of type `content_type`.
  Response(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");

  /// The status code.
  int status() const noexcept;
  /// Sets the status code (100..999) and, optionally, a reason phrase (else the standard
  /// one). Throws std::invalid_argument outside 100..999.
  Response& set_status(int status, std::string reason = {});
  /// Replaces the fields called `name` with one field.
  Response& set_header(std::string_view name, std::string value);
  /// Adds a field (Set-Cookie and the like may repeat).
  Response& add_header(std::string name, std::string value);
  /// The fields set so far.
  Headers& headers() noexcept;
  /// Sets the whole body (sent with Content-Length).
  Response& set_body(std::string body);
  /// The body set so far.
  const std::string& body() const noexcept;
  /// Makes the body the file at `path` (sent with Content-Length, chunk by chunk through a
  /// FileSender, so a large file never sits in memory). Throws std::system_error naming
  /// the path if it cannot be opened or is not a regular file (a FIFO or a device is
  /// refused without blocking: open_regular_file). Sent as a 200 to GET or HEAD, it
  /// carries ETag and Last-Modified (unless set) and answers conditional requests (304)
  /// and Range requests (206, 416): docs/web.md.
  Response& set_file(const std::string& path);
  /// Makes the body `size` bytes read from `source` (sent with Content-Length through a
  /// FileSender; a source with a descriptor, as open_regular_file gives, goes with
  /// sendfile(2) where the transport allows). Exactly `size` bytes are sent: a source
  /// that ends sooner ends the connection. Throws std::invalid_argument for a null source.
  Response& set_file(std::unique_ptr<ByteSource> source, std::uint64_t size);

  /// Bound responses: sends the status, fields and body; the exchange is over. Calls
  /// after the first end() (or once the connection is gone) do nothing.
  void end();
  /// set_body(body), then end(); once the body is streamed (write() was called), `body`
  /// is its last piece instead.
  void end(std::string body);
  /// Sends `other` (a value built elsewhere, as a Deferred handler returns) as this
  /// exchange's response.
  void end(const Response& other);
  /// Streams one piece of the body; the first call sends the head. HTTP/1.1 clients get
  /// chunked coding (unless a Content-Length field was set, which the pieces must then
  /// match); HTTP/1.0 clients get a body delimited by the connection's close. Nothing is
  /// sent for HEAD requests. Empty pieces are ignored. Finish with end().
  void write(std::string_view data);
  /// Registers a producer for back-pressure on a streamed body (Transport's rules: a
  /// streaming producer is paused above the write buffer's high mark and resumed below
  /// the low mark). It is unregistered by end() and told stop_producing() if the
  /// connection goes away. Does nothing when not connected.
  void register_producer(Producer& producer, bool streaming);
  /// Switches the connection to `protocol`: the Upgrade mechanism (set status 101 and the
  /// Upgrade and Connection fields first), or a tunnel for a CONNECT request (a 2xx
  /// status; its head carries no Content-Length, Transfer-Encoding or Connection field).
  /// The head is sent, then `protocol` gets connection_made on the same transport and
  /// every later byte, starting with any the client sent after the request. Throws
  /// std::logic_error unless the status is 101 or a 2xx answering CONNECT.
  void switch_protocols(std::unique_ptr<Protocol> protocol);

  /// True once the head has been sent.
  bool started() const noexcept;
  /// True once end() was called (or the exchange was ended by the server: a handler
  /// time-out, a lost connection).
  bool finished() const noexcept;
  /// True while the exchange's connection is open.
  bool connected() const noexcept;
  /// The request this responds to (an empty Request for a value built by hand).
  Request& request() const noexcept;

  /// Internal: a handle on the server's exchange.
  explicit Response(std::shared_ptr<detail::Exchange> exchange) : x_(std::move(exchange)) {}

 private:
  friend class detail::HttpConnection;
  std::shared_ptr<detail::Exchange> x_;
};

/// How a handler takes its requests, given with it: `Handler(f, {.stream_body = true})`.
struct HandlerOptions {
  /// The handler runs as soon as a request's head has arrived and reads the body with
  /// Request::read_some(); the server keeps at most `body_buffer` unread bytes (plus one
  /// read from the socket) and meanwhile stops reading from the client, so memory stays
  /// bounded whatever the upload's size. false: the handler runs once the whole body is
  /// in Request::body().
  bool stream_body = false;
  /// The back-pressure mark of a streamed body, in bytes (at least 1).
  std::size_t body_buffer = 64 * 1024;
  /// This handler's limit on a request body instead of HttpLimits::max_body (413 above
  /// it, before any body byte is read when Content-Length says so). 0: no limit, allowed
  /// only with stream_body.
  std::optional<std::uint64_t> max_body;
  /// Sees each request's head before any byte of its body is read and before `100
  /// Continue` is sent. A Response it returns is the answer (401, 413, 417...) and the
  /// handler does not run: the body is dropped and the connection kept, as after any
  /// answer sent before the body's end (Request::read_some). nullopt lets the request
  /// through to the handler. If it throws, 500.
  std::function<std::optional<Response>(const Request&)> check;
};

/// What answers requests. Built from any of the three styles, or a plain function:
///  - a callback `void(Request&, Response&)` that ends the response now or later;
///  - a function returning `Deferred<Response>`;
///  - a coroutine returning `Task<Response>`;
///  - a function `Response(Request&)` that answers at once.
/// An exception (thrown, or the Deferred's error) becomes a 500 if nothing was sent yet,
/// and is logged.
class Handler {
 public:
  /// The callback form every style is turned into.
  using Callback = std::function<void(Request&, Response&)>;
  /// A handler that answers 404 to everything.
  Handler();
  /// The callback style.
  template <class F>
    requires std::invocable<F&, Request&, Response&>
  Handler(F f) : fn_(std::move(f)) {}  // NOLINT: implicit on purpose
  /// The Deferred and coroutine styles.
  template <class F>
    requires(std::invocable<F&, Request&> &&
             std::convertible_to<std::invoke_result_t<F&, Request&>, Deferred<Response>>)
  Handler(F f)  // NOLINT: implicit on purpose
      : fn_([f = std::move(f)](Request& request, Response& response) mutable {
          answer_later(Deferred<Response>(f(request)), response);
        }) {}
  /// A function of the request that returns its Response at once (as the callback
  /// style that ends `response` with it; exceptions propagate the same way).
  template <class F>
    requires(std::invocable<F&, Request&> &&
             std::same_as<std::remove_cvref_t<std::invoke_result_t<F&, Request&>>, Response>)
  Handler(F f)  // NOLINT: implicit on purpose
      : fn_([f = std::move(f)](Request& request, Response& response) mutable {
          response.end(f(request));
        }) {}
  /// Any of the styles above, with `options` (streamed body, own body limit, check).
  /// Throws std::invalid_argument for a max_body of 0 without stream_body, or a
  /// body_buffer of 0.
  template <class F>
    requires(!std::same_as<std::decay_t<F>, Handler>)
  Handler(F f, HandlerOptions options) : Handler(std::move(f)) {
    set_options(std::move(options));
  }
  /// Runs the handler (exceptions propagate; the server turns them into 500).
  void operator()(Request& request, Response& response) const { fn_(request, response); }
  /// The options of the handler that answers `method` on `target` (for a Router, those of
  /// the route that matches), or null for the defaults.
  const HandlerOptions* options_for(std::string_view method, std::string_view target) const;

 private:
  friend class Router;
  static void answer_later(Deferred<Response> reply, Response response);
  void set_options(HandlerOptions options);
  Callback fn_;
  std::shared_ptr<const HandlerOptions> options_;
  // A Router's: finds the options of the route for a method and target.
  std::function<const HandlerOptions*(std::string_view, std::string_view)> resolve_;
};

/// Everything a server enforces, with its defaults. Every time-out is in seconds; 0
/// turns it off.
struct HttpServerOptions {
  /// Parser limits (414, 431, 413...).
  HttpLimits limits{.max_start_line = 8 * 1024,
                    .max_field_line = 8 * 1024,
                    .max_head = 64 * 1024,
                    .max_fields = 100,
                    .max_body = 1024 * 1024,
                    .max_chunk_line = 1024};
  /// The Server field's value (empty: no Server field).
  std::string server_name = "torsion";
  /// Requests served on one connection before it is closed (Connection: close on the
  /// last); 0 means no cap.
  std::size_t max_requests = 10000;
  /// Bytes of pipelined input kept while a request is being answered; past it the
  /// connection stops reading until the answer is sent.
  std::size_t read_ahead = 64 * 1024;
  /// From the first byte of a request to the end of its head (slowloris): 408.
  double header_timeout = 10;
  /// A body must arrive at least this fast (bytes per second, averaged over
  /// body_rate_window) or the request gets 408; a slow but steady upload passes.
  double min_body_rate = 1024;
  /// The window over which min_body_rate is measured.
  double body_rate_window = 5;
  /// How long a keep-alive connection may wait for its next request before it is closed.
  double idle_timeout = 60;
  /// How long a handler may take: 503 if nothing was sent yet, else the connection is
  /// aborted.
  double handler_timeout = 60;
  /// After an error response: how long the server keeps reading (and discarding) what
  /// the client still sends, after its half-close, before it closes. Also the longest
  /// time the rest of a body is read and dropped after an answer sent before its end.
  double linger_timeout = 2;
  /// Files (Response::set_file) go with sendfile(2) over TCP and Unix sockets; false
  /// reads and writes them chunk by chunk, as over TLS always.
  bool sendfile = true;
  /// Seconds since the epoch for the Date field; empty reads std::time. Tests set it
  /// (for example from a ManualClock) to drive the Date field by hand.
  std::function<std::time_t()> wall_clock;
};

/// The Factory that serves HTTP/1.1 on every connection it builds (Twisted's Site). Its
/// connections share the handler and options with it, so it may be destroyed before
/// them (declaration order does not matter).
class HttpFactory final : public Factory {
 public:
  /// Serves `handler` with `options`; timers run on `scheduler` (the Reactor, or a
  /// ManualClock in tests).
  HttpFactory(Scheduler& scheduler, Handler handler, HttpServerOptions options = {});
  ~HttpFactory() override;
  /// A new HTTP connection for `peer`.
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override;
  /// The options in force.
  const HttpServerOptions& options() const noexcept;

 private:
  Scheduler& scheduler_;
  std::shared_ptr<const detail::ServerConfig> config_;
};

/// The value of a Date field for now ("Sun, 06 Nov 1994 08:49:37 GMT", from
/// std::time): http_date(std::time(nullptr)).
std::string_view http_date();

/// The value of a Date field for `now` (seconds since the epoch). Each thread keeps the
/// last value it formatted and formats again only when `now` differs from that second,
/// so a server answering many requests a second formats the field once a second. The
/// view stays valid until the thread's next call with another second.
std::string_view http_date(std::time_t now);

}  // namespace torsion::web
