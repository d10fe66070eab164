#include "web/router.hpp"

#include <stdexcept>

namespace torsion::web {

Router::Router() : table_(std::make_shared<Table>()) {}

Router& Router::route(std::string method, std::string_view pattern, Handler handler) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("Router::route: pattern '" + std::string(pattern) +
                                "' does not start with '/'");
  Route r{std::move(method), {}, std::move(handler)};
  std::string_view rest = pattern.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    r.segments.emplace_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  for (std::size_t i = 0; i + 1 < r.segments.size(); ++i)
    if (!r.segments[i].empty() && r.segments[i][0] == '*')
      throw std::invalid_argument("Router::route: in '" + std::string(pattern) +
                                  "', a '*' segment must be the last");
  if (r.handler.options_ || r.handler.resolve_) table_->any_options = true;
  table_->routes.push_back(std::move(r));
  return *this;
}

bool Router::match(const Route& route, std::string_view path, Params* bound) {
  Params params;
  std::string_view rest = path.substr(1);
  for (std::size_t i = 0; i < route.segments.size(); ++i) {
    const std::string& seg = route.segments[i];
    if (!seg.empty() && seg[0] == '*') {
      if (bound) {
        params.emplace_back(seg.substr(1), std::string(rest));
        *bound = std::move(params);
      }
      return true;
    }
    if (rest.data() == nullptr) return false;  // the path has fewer segments
    const std::size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (!seg.empty() && seg[0] == ':') {
      if (part.empty()) return false;
      if (bound) params.emplace_back(seg.substr(1), std::string(part));
    } else if (seg != part) {
      return false;
    }
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (rest.data() != nullptr) return false;  // the path has more segments
  if (bound) *bound = std::move(params);
  return true;
}

const Router::Route* Router::find(std::string_view method, std::string_view path, Params* params,
                                  std::string* allow) const {
  if (path.empty() || path.front() != '/') return nullptr;
  const Route* fallback = nullptr;
  for (const Route& r : table_->routes) {
    if (!match(r, path, nullptr)) continue;
    if (r.method == method) {
      if (params) match(r, path, params);
      return &r;
    }
    if (method == "HEAD" && r.method == "GET" && !fallback) fallback = &r;
    if (allow && allow->find(r.method) == std::string::npos) *allow += (allow->empty() ? "" : ", ") + r.method;
  }
  if (fallback && params) match(*fallback, path, params);
  return fallback;
}

void Router::handle(Request& request, Response& response) const {
  std::string allow;
  if (const Route* r = find(request.method(), request.path(), &request.params_, &allow))
    return r->handler(request, response);
  if (allow.empty()) return response.end(Response(404, "not found\n"));
  Response refusal(405, "method not allowed\n");
  refusal.set_header("Allow", allow);
  response.end(refusal);
}

const HandlerOptions* Router::options_for(std::string_view method, std::string_view target) const {
  if (!table_->any_options) return nullptr;
  const Route* r = find(method, target.substr(0, target.find('?')), nullptr, nullptr);
  return r ? r->handler.options_for(method, target) : nullptr;
}

Router::operator Handler() const {
  Handler handler([routes = *this](Request& request, Response& response) { routes.handle(request, response); });
  handler.resolve_ = [routes = *this](std::string_view method, std::string_view target) {
    return routes.options_for(method, target);
  };
  return handler;
}

}  // namespace torsion::web
