#include "framework/reason.hpp"

#include <cerrno>
#include <string_view>

namespace torsion {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "torsion"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::connection_done: return "connection closed cleanly";
      case error::connection_lost: return "connection lost";
      case error::connection_aborted: return "connection aborted";
      case error::connection_refused: return "connection refused";
      case error::timed_out: return "timed out";
      case error::lookup_failed: return "host name lookup failed";
      case error::callback_threw: return "a callback threw an exception";
      case error::refused_by_factory: return "the factory refused the connection";
      case error::connect_failed: return "connect failed";
      case error::cancelled: return "cancelled";
      case error::line_too_long: return "line too long";
      case error::length_limit_exceeded: return "length limit exceeded";
      case error::malformed_input: return "malformed input";
      case error::datagram_failed: return "datagram failed";
      case error::tls_failed: return "TLS failed";
    }
    return "unknown torsion error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

std::error_code normalize_os_error(std::error_code ec) noexcept {
  if (ec && std::string_view(ec.category().name()) == "asio.system")
    return {ec.value(), std::system_category()};
  return ec;
}

namespace {

// True when `cause` is the OS error that `kind` already names ("connection refused" and
// ECONNREFUSED's "Connection refused"), so that its text would only repeat the kind.
bool restates(error kind, std::error_code cause) {
  switch (kind) {
    case error::connection_refused: return cause == std::errc::connection_refused;
    case error::timed_out: return cause == std::errc::timed_out;
    case error::cancelled: return cause == std::errc::operation_canceled;
    case error::connection_aborted: return cause == std::errc::connection_aborted;
    default: return false;
  }
}

}  // namespace

Reason::Reason(error kind, std::error_code cause, std::string detail,
               std::exception_ptr exception)
    : kind_(kind), cause_(normalize_os_error(cause)), exception_(std::move(exception)) {
  message_ = make_error_code(kind).message();
  if (cause_ && !restates(kind_, cause_)) message_ += ": " + cause_.message();
  if (!detail.empty()) message_ += " (" + detail + ")";
}

Reason Reason::from_os_error(std::error_code cause, std::string detail) {
  cause = normalize_os_error(cause);
  if (cause == std::errc::connection_refused)
    return Reason(error::connection_refused, cause, std::move(detail));
  if (cause == std::errc::timed_out)
    return Reason(error::timed_out, cause, std::move(detail));
  if (cause == std::errc::operation_canceled)
    return Reason(error::cancelled, cause, std::move(detail));
  return Reason(error::connection_lost, cause, std::move(detail));
}

}  // namespace torsion
