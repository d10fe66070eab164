#include "web/router.hpp"

#include <stdexcept>

namespace torsion::web {

Router::Router() : routes_(std::make_shared<std::vector<Route>>()) {}

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
  routes_->push_back(std::move(r));
  return *this;
}

bool Router::match(const Route& route, std::string_view path, Request& request) {
  std::vector<std::pair<std::string, std::string>> params;
  std::string_view rest = path.substr(1);
  for (std::size_t i = 0; i < route.segments.size(); ++i) {
    const std::string& seg = route.segments[i];
    if (!seg.empty() && seg[0] == '*') {
      params.emplace_back(seg.substr(1), std::string(rest));
      request.params_ = std::move(params);
      return true;
    }
    if (rest.data() == nullptr) return false;  // the path has fewer segments
    const std::size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (!seg.empty() && seg[0] == ':') {
      if (part.empty()) return false;
      params.emplace_back(seg.substr(1), std::string(part));
    } else if (seg != part) {
      return false;
    }
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (rest.data() != nullptr) return false;  // the path has more segments
  request.params_ = std::move(params);
  return true;
}

void Router::handle(Request& request, Response& response) const {
  const std::string_view path = request.path();
  if (path.empty() || path.front() != '/') return response.end(Response(404, "not found\n"));
  std::string allow;
  const Route* fallback = nullptr;
  for (const Route& r : *routes_) {
    if (!match(r, path, request)) continue;
    if (r.method == request.method()) return r.handler(request, response);
    if (request.method() == "HEAD" && r.method == "GET" && !fallback) fallback = &r;
    if (allow.find(r.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + r.method;
  }
  if (fallback) {
    match(*fallback, path, request);
    return fallback->handler(request, response);
  }
  if (allow.empty()) return response.end(Response(404, "not found\n"));
  Response refusal(405, "method not allowed\n");
  refusal.set_header("Allow", allow);
  response.end(refusal);
}

Router::operator Handler() const {
  return Handler([routes = *this](Request& request, Response& response) {
    routes.handle(request, response);
  });
}

}  // namespace torsion::web
