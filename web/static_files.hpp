#pragma once
/// \file
/// static_files: a Handler that serves the files under a directory.

#include <string>

#include "web/http_server.hpp"

namespace torsion::web {

/// Serves the regular files under `root` for GET and HEAD (405 for other methods): the
/// path is the Router's "*path" parameter when the route has one, else the request's
/// path; it is percent-decoded, and a path with a ".." segment, a NUL or a backslash is
/// refused (404, like a missing file). A directory serves its index.html. Files are sent
/// with Content-Length, a Content-Type guessed from the extension, ETag and
/// Last-Modified, through a FileSender (never whole in memory); If-None-Match and
/// If-Modified-Since get 304, Range gets 206 or 416 (Response::set_file).
Handler static_files(std::string root);

}  // namespace torsion::web
