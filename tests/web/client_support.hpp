#pragma once
// Helpers shared by the HTTP client tests: a request's outcome waited for on the reactor,
// and a factory that counts the connections a server accepts.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "framework/deferred.hpp"
#include "framework/protocol.hpp"
#include "framework/reactor.hpp"
#include "tests/support/wait.hpp"
#include "web/http_client.hpp"

namespace torsion::test {

// What a request ended with: a response or an error.
struct Fetched {
  std::optional<web::ClientResponse> response;
  std::exception_ptr error;
  bool done() const { return response || error; }
};

// Runs `reactor` until `d` fires (REQUIREd, named `what` on failure) and returns its outcome.
inline Fetched await_response(Reactor& reactor, Deferred<web::ClientResponse> d, const char* what) {
  Fetched o;
  d.add_callbacks([&](web::ClientResponse r) { o.response = std::move(r); },
                  [&](std::exception_ptr e) { o.error = e; });
  REQUIRE(wait_for(reactor, [&] { return o.done(); }, what));
  return o;
}

// Reads a streamed response body (ClientResponse::read_some) to its end, keeping its
// first MiB; `largest` is the largest piece a read gave.
struct Drain {
  explicit Drain(web::ClientResponse r) : response(std::move(r)) {}
  web::ClientResponse response;
  std::string body;
  std::size_t largest = 0;
  std::size_t bytes = 0;
  bool ended = false;
  std::exception_ptr error;
  void next() {
    response.read_some().add_callbacks(
        [this](std::string piece) {
          if (piece.empty()) {
            ended = true;
            return;
          }
          largest = std::max(largest, piece.size());
          bytes += piece.size();
          if (body.size() < 1024 * 1024) body += piece;
          next();
        },
        [this](std::exception_ptr e) { error = e; });
  }
};

// Counts the connections a factory accepts.
struct Counting : Factory {
  Factory& inner;
  int accepted = 0;
  explicit Counting(Factory& f) : inner(f) {}
  std::unique_ptr<Protocol> build_protocol(const Address& peer) override {
    ++accepted;
    return inner.build_protocol(peer);
  }
};

}  // namespace torsion::test
