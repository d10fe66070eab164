#pragma once
/// \file
/// Router: picks a Handler by method and path, binding path parameters.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "web/http_server.hpp"

namespace torsion::web {

/// Routes requests by method and path pattern. A pattern is a path whose segments are
/// literal ("users"), a parameter (":id", one segment) or, last, a rest parameter
/// ("*path", the rest of the path, possibly empty). Routes are tried in the order added.
/// No route for the path: 404; a route for the path but not the method: 405 with an
/// Allow field. A HEAD request uses the GET route when it has no HEAD route. Copies share
/// the routes; a Router converts to a Handler (for HttpFactory) that keeps them alive.
class Router {
 public:
  /// An empty router (everything is 404).
  Router();
  /// Adds a route. Throws std::invalid_argument for a pattern not starting with '/' or
  /// with a '*' segment that is not last.
  Router& route(std::string method, std::string_view pattern, Handler handler);
  /// route("GET", ...).
  Router& get(std::string_view pattern, Handler handler) { return route("GET", pattern, std::move(handler)); }
  /// route("POST", ...).
  Router& post(std::string_view pattern, Handler handler) { return route("POST", pattern, std::move(handler)); }
  /// route("PUT", ...).
  Router& put(std::string_view pattern, Handler handler) { return route("PUT", pattern, std::move(handler)); }
  /// route("DELETE", ...).
  Router& del(std::string_view pattern, Handler handler) { return route("DELETE", pattern, std::move(handler)); }
  /// Answers `request` with the matching route's handler (or 404/405).
  void handle(Request& request, Response& response) const;
  /// A Handler that routes with this router's routes.
  operator Handler() const;  // NOLINT: implicit on purpose

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  static bool match(const Route& route, std::string_view path, Request& request);
  std::shared_ptr<std::vector<Route>> routes_;
};

}  // namespace torsion::web
