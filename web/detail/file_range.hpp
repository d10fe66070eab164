#pragma once
// Private: how the server answers a Range request on a file response (web/byte_range.cpp),
// called once per response, before its head is written.

#include <cstdint>
#include <memory>
#include <string>

#include "web/http_server.hpp"

namespace torsion::web::detail {

// For a 200 whose body is a file with a descriptor, answering GET or HEAD: adds
// Accept-Ranges: bytes and, if `request` has one Range field (and an If-Range, if any,
// that strongly matches the response's ETag), makes it a 206 (status, Content-Range,
// `file` moved to the range's first byte, `file_size` its length) or a 416 (Content-Range
// bytes */size, a short text body, no file). Anything else is left as it is.
void answer_range(const Request& request, int& status, Headers& headers, std::string& body,
                  std::unique_ptr<ByteSource>& file, std::uint64_t& file_size);

}  // namespace torsion::web::detail
