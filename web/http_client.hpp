#pragma once
/// \file
/// http_request: a small HTTP/1.1 client over TCP, returning a Deferred (awaitable in a
/// Task); HttpPool: the same requests over kept-alive connections reused per host, at
/// most max_per_host at once. Bodies whole or streamed with back-pressure
/// (ClientResponse::read_some), redirects when asked (HttpClientOptions::max_redirects).

#include <cstddef>
#include <memory>
#include <string>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "web/http_message.hpp"

namespace torsion::web {

namespace detail {
struct ResponseStream;
class ClientConnection;
}  // namespace detail

/// A response as the client received it: the body complete in `body`, or, with
/// HttpClientOptions::stream_body, read piece by piece with read_some().
struct ClientResponse {
  int status = 0;          ///< the status code
  std::string reason;      ///< the reason phrase
  int version_minor = 1;   ///< 0 for HTTP/1.0, 1 for HTTP/1.1
  Headers headers;         ///< the header fields
  std::string body;        ///< the body, decoded from chunked if it was (empty when streamed)
  std::string url;         ///< the URL that answered (the last one, after redirects)

  /// The next piece of the body. With HttpClientOptions::stream_body the request's
  /// Deferred fires once the head is in, and the body comes this way: each read fires
  /// with the bytes that arrived since the last one (waiting for some if there are none),
  /// then with an empty string at the end. The connection stops reading while
  /// HttpClientOptions::body_buffer bytes wait for a read (back-pressure), and goes back
  /// to its pool once the body has ended. Fails with ConnectionError (lost before the
  /// end), HttpError (malformed or too large) or TimeoutError (idle_timeout). Without
  /// stream_body, the first read gives the whole body (a copy of `body`), then the end.
  /// One read at a time: a second one while the first waits throws std::logic_error.
  /// Copies share the stream; once the last copy is gone before the end of the body, the
  /// connection is closed.
  Deferred<std::string> read_some();

 private:
  friend class detail::ClientConnection;
  std::shared_ptr<detail::ResponseStream> stream_;  // a streamed body
  bool body_given_ = false;                         // read_some gave the whole body
};

/// Limits and time-outs for http_request; time-outs in seconds, 0 for none.
struct HttpClientOptions {
  /// Bounds on the response (max_body: 8 MiB by default).
  HttpLimits limits;
  /// Connecting, name lookup included.
  double connect_timeout = 30;
  /// From the connection to the end of the response (with stream_body, to its head).
  double response_timeout = 60;
  /// The longest wait for the next byte of a response once the request is sent (not
  /// counting time the connection does not read because a streamed body waits for
  /// read_some): TimeoutError.
  double idle_timeout = 30;
  /// From the request sent to the response's head (status line and fields; an interim
  /// 1xx does not count): a server that trickles its head byte by byte, each in time for
  /// idle_timeout, is cut here all the same: TimeoutError. The body is not counted.
  double headers_timeout = 30;
  /// Redirects followed (a 301, 302 or 303 is followed with GET and no body, HEAD staying
  /// HEAD; a 307 or 308 with the same method and body; Authorization and Cookie fields
  /// are dropped for another host). 0: none, the 3xx response is the result. A redirect
  /// past the count fails with HttpError (the 3xx status, "too many redirects").
  int max_redirects = 0;
  /// The body comes through ClientResponse::read_some instead of ClientResponse::body:
  /// the Deferred fires at the head, memory is bounded by body_buffer whatever the size.
  bool stream_body = false;
  /// With stream_body: the back-pressure mark, in bytes (at least 1).
  std::size_t body_buffer = 64 * 1024;
  /// https: PEM file of the certificate authorities to trust; empty for the system's.
  /// The server's certificate and name are always verified. A file that cannot be read
  /// makes the request throw std::invalid_argument.
  std::string ca_file;
};

/// Sends one request to `url` ("http://host[:port]/path?query" or "https://...", the
/// default ports 80 and 443; https connects with connect_ssl, verification on) and fires
/// with the response once its body is complete (Content-Length, chunked or delimited by
/// the close; interim 1xx answers are skipped), or once its head is in with
/// options.stream_body; redirects are followed when options.max_redirects allows, with
/// the same Deferred. The request goes out with Host,
/// Content-Length when there is a body, and Connection: close, on a connection of its
/// own. Throws std::invalid_argument at once for a URL it cannot use (https when torsion
/// was built without OpenSSL). The Deferred fails with ConnectionError (with its Reason)
/// when the connection fails (a certificate that does not verify: error::tls_failed and
/// why) or is lost before the response ends, HttpError for a malformed or too large
/// response (or too many redirects), TimeoutError after a time-out. Cancelling it closes
/// the connection. Throws std::invalid_argument for a body_buffer of 0.
/// Reactor thread only.
Deferred<ClientResponse> http_request(Reactor& reactor, std::string method, const std::string& url,
                                      Headers headers, std::string body, HttpClientOptions options);
/// http_request with the default HttpClientOptions. (An overload, not a default argument:
/// GCC 12 destroys a defaulted aggregate argument twice inside a co_await expression.)
Deferred<ClientResponse> http_request(Reactor& reactor, std::string method, const std::string& url,
                                      Headers headers = {}, std::string body = {});

/// How an HttpPool keeps connections.
struct HttpPoolOptions {
  /// Idle connections kept per scheme, host and port; one more is closed when it frees.
  std::size_t max_idle_per_host = 4;
  /// Seconds an idle connection waits for its next request before the pool closes it.
  double idle_timeout = 30;
  /// Connections open at once per scheme, host and port (connecting, busy or idle);
  /// requests beyond it wait, in order, for one to free. 0: no cap.
  std::size_t max_per_host = 16;
};

namespace detail {
struct PoolState;
}

/// A per-host pool of kept-alive connections (urllib3's PoolManager): request() sends
/// on an idle connection to the same scheme, host and port (and CA file) when there is one, else on a new
/// connection, and gives the connection back to the pool once its response ended, if
/// both sides agreed to keep it (HTTP/1.1 without Connection: close, a response not
/// delimited by the close). A connection the server closes while idle leaves the pool;
/// an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) on a reused connection
/// that is lost before any byte of its response is sent once more on a new connection.
/// At most HttpPoolOptions::max_per_host connections per host are open at once; further
/// requests queue and go out, in order, as connections free.
/// Destroying the pool closes its idle connections; requests in flight (and queued) still end
/// normally and their connections are closed after them, so the pool may go first.
/// Reactor thread only. Not copyable.
class HttpPool {
 public:
  /// A pool whose connections run on `reactor` and whose idle time-outs run on
  /// `scheduler` (the reactor itself, or a ManualClock in tests).
  HttpPool(Reactor& reactor, Scheduler& scheduler, HttpPoolOptions options = {});
  /// A pool whose idle time-outs also run on `reactor`.
  explicit HttpPool(Reactor& reactor, HttpPoolOptions options = {}) : HttpPool(reactor, reactor, options) {}
  /// Closes the idle connections; see the class comment for those in use.
  ~HttpPool();
  HttpPool(const HttpPool&) = delete;
  HttpPool& operator=(const HttpPool&) = delete;

  /// As http_request, through the pool (the request carries no Connection: close).
  Deferred<ClientResponse> request(std::string method, const std::string& url, Headers headers,
                                   std::string body, HttpClientOptions options);
  /// request() with the default HttpClientOptions (an overload, as for http_request).
  Deferred<ClientResponse> request(std::string method, const std::string& url, Headers headers = {},
                                   std::string body = {});
  /// How many idle connections the pool holds, over all hosts.
  std::size_t idle_count() const noexcept;

 private:
  std::shared_ptr<detail::PoolState> state_;
};

}  // namespace torsion::web
