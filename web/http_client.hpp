#pragma once
/// \file
/// http_request: a small HTTP/1.1 client over TCP, returning a Deferred (awaitable in a
/// Task).

#include <string>

#include "framework/deferred.hpp"
#include "framework/reactor.hpp"
#include "framework/stream.hpp"
#include "web/http_message.hpp"

namespace torsion::web {

/// A response as the client received it, body complete.
struct ClientResponse {
  int status = 0;          ///< the status code
  std::string reason;      ///< the reason phrase
  int version_minor = 1;   ///< 0 for HTTP/1.0, 1 for HTTP/1.1
  Headers headers;         ///< the header fields
  std::string body;        ///< the body, decoded from chunked if it was
};

/// Limits and time-outs for http_request; time-outs in seconds, 0 for none.
struct HttpClientOptions {
  /// Bounds on the response (max_body: 8 MiB by default).
  HttpLimits limits;
  /// Connecting, name lookup included.
  double connect_timeout = 30;
  /// From the connection to the end of the response.
  double response_timeout = 60;
};

/// Sends one request to `url` ("http://host[:port]/path?query"; the scheme's default
/// port is 80) and fires with the response once its body is complete (Content-Length,
/// chunked or delimited by the close; interim 1xx answers are skipped). The request goes
/// out with Host, Content-Length when there is a body, and Connection: close, on a
/// connection of its own. Throws std::invalid_argument at once for a URL it cannot use
/// (https is not supported by this client yet). The Deferred fails with ConnectionError (with its Reason) when the
/// connection fails or is lost before the response ends, HttpError for a malformed or
/// too large response, TimeoutError after a time-out. Cancelling it closes the
/// connection. Reactor thread only.
Deferred<ClientResponse> http_request(Reactor& reactor, std::string method, const std::string& url,
                                      Headers headers = {}, std::string body = {},
                                      HttpClientOptions options = {});

}  // namespace torsion::web
