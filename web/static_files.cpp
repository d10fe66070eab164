#include "web/static_files.hpp"

#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

#include "framework/file_sender.hpp"

namespace torsion::web {

namespace {

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// True if `path` is safe to append to the root: no "..", NUL or backslash.
bool safe(std::string_view path) {
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos)
    return false;
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    if (path.substr(0, slash) == "..") return false;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

std::string_view content_type(std::string_view path) {
  const std::size_t dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "css") return "text/css";
  if (ext == "js") return "text/javascript";
  if (ext == "json") return "application/json";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "svg") return "image/svg+xml";
  return "application/octet-stream";
}

}  // namespace

Handler static_files(std::string root) {
  return [root = std::move(root)](Request& request, Response& response) {
    if (request.method() != "GET" && request.method() != "HEAD") {
      Response refusal(405, "method not allowed\n");
      refusal.set_header("Allow", "GET, HEAD");
      return response.end(refusal);
    }
    const std::string_view bound = request.param("path");
    const std::string_view raw = bound.empty() ? request.path() : bound;
    const auto decoded = percent_decode(raw);
    if (!decoded || !safe(*decoded)) return response.end(Response(404, "not found\n"));
    std::filesystem::path file = std::filesystem::path(root) / std::filesystem::path(*decoded).relative_path();
    // One open(2) and one fstat(2) for a file, no stat(2) before: the open does not block
    // on a FIFO (O_NONBLOCK) and the fstat tells a directory or a FIFO from a file.
    std::error_code ec;
    auto source = open_regular_file(file.string(), ec);
    if (ec == std::errc::is_a_directory) {
      file /= "index.html";
      source = open_regular_file(file.string(), ec);
    }
    if (!source) {
      if (ec == std::errc::permission_denied) return response.end(Response(403, "forbidden\n"));
      return response.end(Response(404, "not found\n"));
    }
    Response reply(200);
    const std::uint64_t size = *source->size_at_open();
    reply.set_file(std::move(source), size);
    reply.set_header("Content-Type", std::string(content_type(file.string())));
    response.end(reply);
  };
}

}  // namespace torsion::web
