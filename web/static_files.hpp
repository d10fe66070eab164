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
/// with Content-Length and a Content-Type guessed from the extension, through a
/// FileSender (never whole in memory).
Handler static_files(std::string root);

}  // namespace torsion::web
