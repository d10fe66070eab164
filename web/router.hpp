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
  /// The HandlerOptions of the route that answers `method` on `target`, or null (no
  /// route, or one without options).
  const HandlerOptions* options_for(std::string_view method, std::string_view target) const;
  /// A Handler that routes with this router's routes.
  operator Handler() const;  // NOLINT: implicit on purpose

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Handler handler;
  };
  using Params = std::vector<std::pair<std::string, std::string>>;
  struct Table {
    std::vector<Route> routes;
    bool any_options = false;  // a route's handler has options (or is a Router that may)
  };
  // True if `path` matches `route`; binds the parameters into `params` if not null.
  static bool match(const Route& route, std::string_view path, Params* params);
  // The route for `method` on `path` (HEAD falls back to GET), or null; `allow` collects
  // the methods of the routes for the path if not null.
  const Route* find(std::string_view method, std::string_view path, Params* params, std::string* allow) const;
  std::shared_ptr<Table> table_;
};

}  // namespace torsion::web
