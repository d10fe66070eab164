#include "framework/deferred.hpp"

#include <cmath>
#include <string>

#include "framework/log.hpp"

namespace torsion {

std::string describe_error(const std::exception_ptr& error) {
  if (!error) return "no error";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "non-standard exception";
  }
}

namespace detail {

void log_unhandled_error(const std::exception_ptr& error) {
  log(LogLevel::error, "Unhandled error in Deferred: " + describe_error(error));
}

void check_timeout(double seconds) {
  if (std::isnan(seconds) || seconds < 0)
    throw std::invalid_argument("Deferred::add_timeout: seconds must be >= 0, got " +
                                std::to_string(seconds));
}

}  // namespace detail
}  // namespace torsion
