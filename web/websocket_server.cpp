#include "web/websocket_server.hpp"

#include <utility>

#include "web/detail/ws_deflate.hpp"
#include "web/detail/ws_setup.hpp"
#include "web/detail/ws_sha1.hpp"

namespace torsion::web {

namespace {

// The comma-separated tokens of every field called `name`, trimmed.
std::vector<std::string_view> tokens(const Headers& headers, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [field, value] : headers.fields()) {
    if (!iequals(field, name)) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      std::string_view token = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (!token.empty()) out.push_back(token);
    }
  }
  return out;
}

// A Sec-WebSocket-Key must be the base64 of 16 bytes: 22 characters and "==".
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (std::size_t i = 0; i < 22; ++i) {
    const char c = key[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

void refuse(Response& response, int status, std::string why) {
  response.set_status(status);
  response.end(std::move(why) + "\n");
}

}  // namespace

std::string websocket_accept(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  const auto digest = detail::sha1(input);
  return detail::base64(digest.data(), digest.size());
}

Handler websocket(Scheduler& scheduler, WebSocketBuilder build, WebSocketServerOptions options) {
  detail::check_deflate_options(options.deflate, "websocket");
  auto config = std::make_shared<const WebSocketServerOptions>(std::move(options));
  return [&scheduler, build = std::move(build), config](Request& request, Response& response) {
    const Headers& h = request.headers();
    if (!h.has_token("Upgrade", "websocket") || !h.has_token("Connection", "upgrade")) {
      response.set_header("Upgrade", "websocket");
      response.set_header("Connection", "Upgrade");
      return refuse(response, 426, "this resource speaks WebSocket");
    }
    if (request.method() != "GET" || request.version_minor() < 1)
      return refuse(response, 400, "a WebSocket upgrade is a GET over HTTP/1.1");
    if (h.get("Sec-WebSocket-Version").value_or("") != "13") {
      response.set_header("Sec-WebSocket-Version", "13");
      return refuse(response, 426, "WebSocket version 13 only");
    }
    const auto key = h.get("Sec-WebSocket-Key");
    if (!key || h.count("Sec-WebSocket-Key") != 1 || !valid_key(*key))
      return refuse(response, 400, "bad Sec-WebSocket-Key");
    if (config->check_origin && !config->check_origin(request))
      return refuse(response, 403, "origin refused");
    std::string chosen;
    const auto offered = tokens(h, "Sec-WebSocket-Protocol");
    for (const auto& mine : config->subprotocols) {
      for (auto theirs : offered)
        if (theirs == mine) chosen = mine;
      if (!chosen.empty()) break;
    }
    std::unique_ptr<WebSocketProtocol> protocol = build(request);
    if (!protocol) return refuse(response, 403, "refused");
    detail::WsDeflateAgreement deflate;
    const auto extensions = detail::ws_deflate_accept(h, config->deflate, deflate);
    detail::WsSetup::start(*protocol, scheduler, WsRole::server, chosen,
                           extensions ? &deflate : nullptr, &config->deflate);
    response.set_status(101);
    response.set_header("Upgrade", "websocket");
    response.set_header("Connection", "Upgrade");
    response.set_header("Sec-WebSocket-Accept", websocket_accept(*key));
    if (!chosen.empty()) response.set_header("Sec-WebSocket-Protocol", chosen);
    if (extensions) response.set_header("Sec-WebSocket-Extensions", *extensions);
    response.switch_protocols(std::move(protocol));
  };
}

}  // namespace torsion::web
