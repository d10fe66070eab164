#pragma once
// The Date field's per-thread cache (web/http_server.cpp, http_date), seen from tests.

#include <cstdint>

namespace torsion::web::detail {

// How many times this thread has formatted a Date value (http_date with a new second).
std::uint64_t http_date_formats() noexcept;

}  // namespace torsion::web::detail
